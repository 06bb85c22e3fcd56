"""Import public tool-calling data sets as examples, and export examples for other trainers.

One module per format, each with ``read(path) -> Iterator[Example | QuarantineRecord]`` and
``write(examples, path, catalog=None) -> ExportResult`` (``bfcl`` is import only). Records that
cannot become examples are never dropped: they come back as quarantine records (``source``
"file:line", ``reason``, the raw ``record``). docs/data-formats.md gives each format's field
mapping and what it cannot express.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from tooltune.data.examples import Example, Quality
from tooltune.data.io import alpaca, bfcl, chatml, glaive, openai, sharegpt, xlam
from tooltune.data.io._records import ExportResult
from tooltune.data.io.dialects import to_json_schema_tool
from tooltune.data.quarantine import QuarantineRecord
from tooltune.errors import DataError
from tooltune.tools.catalog import ToolCatalog

FORMATS: dict[str, ModuleType] = {
    "openai": openai,
    "sharegpt": sharegpt,
    "chatml": chatml,
    "alpaca": alpaca,
    "glaive": glaive,
    "xlam": xlam,
    "bfcl": bfcl,
}
EXPORT_FORMATS = [name for name, module in FORMATS.items() if hasattr(module, "write")]


@dataclass
class ImportResult:
    examples: list[Example] = field(default_factory=list)
    quarantine: list[QuarantineRecord] = field(default_factory=list)
    """Each record not imported: ``source`` ("file:line"), ``reason`` (list) and the raw ``record``."""


def import_file(
    fmt: str, source: str | Path, *, quality: Quality | str = Quality.MEDIUM, dataset: str | None = None, **options: Any
) -> ImportResult:
    """Read ``source`` in format ``fmt``. ``quality`` goes into each example's provenance;
    ``dataset`` names the set (``Example.service`` and the start of ``provenance.origin``);
    ``options`` are the format's own (alpaca: ``call_format``). For ``bfcl``, ``source`` is a
    category name or a question file."""
    read = _module(fmt, FORMATS).read
    _check_options(fmt, read, options)
    result = ImportResult()
    for item in read(source, quality=quality, dataset=dataset, **options):
        (result.examples if isinstance(item, Example) else result.quarantine).append(item)
    return result


def export_file(
    fmt: str, examples: Iterable[Example], out: str | Path, catalog: ToolCatalog | None = None, **options: Any
) -> ExportResult:
    """Write ``examples`` to ``out`` in format ``fmt``. Tool schemas come from each example's
    ``inline_tools``, else from ``catalog`` (needed for examples that only name catalog tools).
    Examples the format cannot express are listed in ``ExportResult.skipped`` with the reason."""
    write = _module(fmt, {name: FORMATS[name] for name in EXPORT_FORMATS}).write
    _check_options(fmt, write, options)
    return write(examples, out, catalog, **options)


def _module(fmt: str, formats: dict[str, ModuleType]) -> ModuleType:
    if fmt in formats:
        return formats[fmt]
    hint = " (bfcl is import only)" if fmt in FORMATS else ""
    raise DataError(f"unknown data format {fmt!r}{hint}; known formats: {', '.join(formats)}.")


def _check_options(fmt: str, function: Any, options: dict[str, Any]) -> None:
    own = [p.name for p in inspect.signature(function).parameters.values() if p.kind is p.KEYWORD_ONLY]
    own = [name for name in own if name not in ("quality", "dataset")]
    unknown = sorted(set(options) - set(own))
    if unknown:
        raise DataError(f"format {fmt!r} has no option {', '.join(unknown)}; its options: {', '.join(own) or 'none'}.")


__all__ = ["EXPORT_FORMATS", "FORMATS", "ExportResult", "ImportResult", "export_file", "import_file", "to_json_schema_tool"]
