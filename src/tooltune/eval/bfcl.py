"""Run a model on BFCL v4 categories and score it with tooltune's matcher: ``tooltune eval bfcl``.

The cases come from the ``bfcl-eval`` package's data files through the BFCL importer
(``tooltune.data.io.import_file("bfcl", category)``: tools stay inline, in BFCL's schema dialect,
and ground truth becomes expected calls with alternatives). The model sees each case rendered by
its own chat template with the case's tools (translated to JSON Schema) and is parsed by its own
call format, exactly as in ``tooltune eval``; the matcher applies BFCL's AST rules (see
:mod:`tooltune.eval.match` for the few deliberate differences). The score is therefore
tooltune's reading of BFCL, comparable across tooltune runs, not a leaderboard submission:
BFCL's own handlers prompt models differently per model family.
"""

from __future__ import annotations

from pathlib import Path

from tooltune.errors import DataError
from tooltune.runtime.generate import Generator
from tooltune.eval.metrics import Metrics
from tooltune.eval.runner import evaluate_examples
from tooltune.eval.score import ScoreResult, write_results
from tooltune.formats.chat import use_tool_listing
from tooltune.runtime.settings import GenerationSettings


def run_bfcl(
    category: str,
    model: str,
    adapter: str | Path | None = None,
    limit: int | None = None,
    *,
    settings: GenerationSettings | None = None,
    output_dir: str | Path | None = None,
) -> Metrics:
    """Evaluate ``model`` (optionally with ``adapter``) on BFCL v4 ``category`` (e.g.
    ``simple_python``; see ``tooltune.data.io.bfcl.CATEGORIES``), on the first ``limit`` cases,
    placed and generating as ``settings`` say (default: :class:`GenerationSettings`' defaults, as
    ``tooltune eval``'s; ``tool_listing`` evaluates a base on a tuned run's prompt bytes).

    Results carry the BFCL case id as ``origin`` and the category as ``split``; with
    ``output_dir`` they are written as ``results.jsonl`` + ``metrics.json``. Cases the importer
    could not read are not scored; they raise when no case is left."""
    from tooltune.data.io import import_file
    from tooltune.runtime.model import load_model

    imported = import_file("bfcl", category)
    examples = imported.examples[:limit] if limit else imported.examples
    if not examples:
        reasons = "; ".join(str(q.reason) for q in imported.quarantine[:3])
        raise DataError(f"bfcl category {category!r}: no case could be imported{': ' + reasons if reasons else ''}.")
    settings = settings or GenerationSettings()
    loaded = load_model(model, adapter, device=settings.device, dtype=settings.dtype)
    if settings.tool_listing != "model":
        use_tool_listing(loaded.tokenizer, settings.tool_listing)
    generator = Generator(loaded, max_new_tokens=settings.max_new_tokens, batch_size=settings.batch_size,
                          constrained=settings.constrained)
    run = evaluate_examples(generator, examples, None, split=category)
    if output_dir is not None:
        write_results(ScoreResult(results=run.results, metrics=run.metrics), output_dir)
    return run.metrics
