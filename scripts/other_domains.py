"""Regenerate src/tooltune/demo/curated/other-domains.json: the tools the demo offers beside
requests they cannot serve (docs/synthetic-data.md#other-domains).

It lists the four demo services other than shop through their real MCP servers (stdio), adds the
hand-written tools of other-domains-extra.yaml, and writes one catalog. tests/data/test_other_domains.py
fails when the committed file no longer matches what this script would write.

    .venv/bin/python scripts/other_domains.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tooltune.safeload.yaml_loader import read_yaml
from tooltune.tools.catalog import Tool, ToolCatalog
from tooltune.tools.discover import discover_mcp_stdio

CURATED = Path(__file__).resolve().parents[1] / "src" / "tooltune" / "demo" / "curated"
SERVICES = ("weather", "calendar", "files", "code")


def build() -> ToolCatalog:
    tools: list[Tool] = []
    with tempfile.TemporaryDirectory() as state:
        for service in SERVICES:
            command = [str(Path(sys.executable).parent / "tooltune"), "demo-server", "--service", service, "--data-dir", state]
            # No source: it would record this run's temp dir and the committed file would drift.
            tools += [t.model_copy(update={"source": None}) for t in discover_mcp_stdio(command, service=service)]
    extra = ToolCatalog.from_dict(read_yaml(CURATED / "other-domains-extra.yaml"), where="other-domains-extra.yaml")
    tools += [t.model_copy(update={"service": "reference"}) for t in extra]
    return ToolCatalog(tools=tools)


if __name__ == "__main__":
    print(build().save(CURATED / "other-domains.json"))
