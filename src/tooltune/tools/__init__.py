"""Tool catalogs: discovery from MCP servers, OpenAPI and files; diffs; argument validation."""
