"""Every exception tooltune raises on purpose.

    TooltuneError                 base: the CLI catches this, prints ``TypeName: message``, exits 1
    ├── ConfigError               a config file or field is invalid
    ├── CatalogError              a tool catalog file or tool definition is invalid
    │   └── SchemaError           a tool's parameter JSON Schema is not a valid schema
    ├── DiscoveryError            a tool source (MCP server, OpenAPI doc, file) could not be read
    │   └── DiscoveryTimeout      the source did not answer within the timeout
    ├── FormatError               unknown tool-call format name, or a call that cannot be rendered
    ├── DataError                 a data file or example is invalid (message names file and line)
    ├── DocumentError             a YAML/JSON file cannot be read: missing, not UTF-8, bad syntax, over a parse limit
    ├── ArgumentError             tool-call arguments do not validate against the tool's schema
    ├── TemplateError             a chat template cannot render the conversation as asked
    ├── TrainError                training cannot start or continue (missing CUDA, data, run dir)
    │   └── CloudError            a hosted fine-tuning API was unreachable, refused a request, or failed the job
    └── RegistryError             a registry lookup, write or status change is not allowed
        └── GateError             deployment refused: the candidate's gate decision failed

Parsers never raise on model output: they return a ``ParseResult`` that carries the failure,
because in evaluation a swallowed parser error would look like a wrong answer.
"""

from __future__ import annotations


class TooltuneError(Exception):
    """Base class of every error tooltune raises on purpose."""


class ConfigError(TooltuneError):
    """A config file or field is invalid."""


class CatalogError(TooltuneError):
    """A tool catalog file or tool definition is invalid."""


class SchemaError(CatalogError):
    """A tool's parameter JSON Schema is not a valid JSON Schema."""


class DiscoveryError(TooltuneError):
    """A tool source could not be read. The message names the source and what failed."""


class DiscoveryTimeout(DiscoveryError):
    """The tool source did not answer within the configured timeout."""


class FormatError(TooltuneError):
    """Unknown tool-call format, or calls that a format cannot express."""


class DataError(TooltuneError):
    """A data file or example is invalid; the message names the file and line (or JSON pointer)."""


class DocumentError(TooltuneError):
    """A YAML or JSON document cannot be read: missing, not UTF-8, malformed, or over a parsing
    limit (:mod:`tooltune.safeload`); the message names file, line and column."""


class ArgumentError(TooltuneError):
    """Tool-call arguments do not validate; ``problems`` lists each as ``tool.path: message``."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


class TemplateError(TooltuneError):
    """A chat template cannot render the conversation as asked."""


class TrainError(TooltuneError):
    """Training cannot start or continue: requirements missing, data unreadable, run dir in use."""


class CloudError(TrainError):
    """A hosted fine-tuning API was unreachable, refused a request, or failed the job; names the base_url."""


class RegistryError(TooltuneError):
    """A registry lookup, write or status change is not allowed; the message names the model and the fix."""


class GateError(RegistryError):
    """Deployment refused because the gate decision failed; ``decision`` lists every check."""

    def __init__(self, message: str, decision: object = None):
        self.decision = decision
        super().__init__(message)
