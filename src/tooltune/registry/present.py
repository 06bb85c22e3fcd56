"""Rich tables for ``tooltune models list | show | diff | history`` and gate decisions.

Each function takes registry records and returns a renderable; the CLI prints it.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from tooltune.registry.gates import GLOBAL, GateDecision, Outcome
from tooltune.registry.records import DeploymentRecord, EvaluationRecord, FieldChange, ModelDiff, ModelRecord
from tooltune.registry.tables import ALL_SERVICES, Action, ModelStatus
from tooltune.tools.present import diff_table

_STATUS_STYLE = {ModelStatus.REGISTERED: "dim", ModelStatus.EVALUATED: "cyan", ModelStatus.DEPLOYED: "green",
                 ModelStatus.ARCHIVED: "dim strike"}
_OUTCOME_STYLE = {Outcome.DEPLOY: "bold green", Outcome.PARTIAL: "bold yellow", Outcome.BLOCKED: "bold red"}
_ACTION_STYLE = {Action.DEPLOY: "green", Action.ROLLBACK: "yellow", Action.ARCHIVE: "dim"}


def models_table(models: Sequence[ModelRecord], *, title: str | None = None) -> Table:
    """One row per version: ``Registry.list_models()``."""
    table = Table(title=title)
    for column in ("name", "version", "kind", "status", "live", "base model", "catalog", "dataset", "created"):
        table.add_column(column, no_wrap=column != "base model")
    for m in models:
        stale = f" [bold red]stale ({escape(', '.join(m.stale_services))})[/]" if m.stale_services else ""
        table.add_row(m.name, m.version, str(m.kind), _status(m.status) + stale, _live(m.live_services) or "",
                      escape(m.base_model), m.catalog_hash, m.dataset_version or "[dim]-[/]", _when(m.created_at))
    return table


def drift_notes(models: Sequence[ModelRecord]) -> Group | None:
    """Why versions are stale (or their tools drifted a little), with the command that migrates
    their data to the live tools; None when every version matches its services' live tools.
    Print it with ``soft_wrap=True``: the command is meant to be copied into a shell whole."""
    lines: list[RenderableType] = []
    for m in models:
        for d in m.drift:
            if d.stale:
                lines.append(Text.from_markup(f"[bold red]{escape(m.ref)} is stale for {escape(d.service)}[/]: "
                                              f"{escape(d.summary())}. Requests for {escape(d.service)} fall back to an "
                                              "earlier compatible version or the base."))
                lines.append(Text(f"  migrate its data: {d.migrate_command}", style="cyan"))
            else:
                lines.append(Text(f"{m.ref}: the live tools of {d.service} changed ({d.summary()}); it still serves.",
                                  style="yellow"))
    return Group(*lines) if lines else None


def model_view(model: ModelRecord, evaluations: Sequence[EvaluationRecord] = (),
               decisions: Sequence[GateDecision] = ()) -> Group:
    """Details of one version, its latest evaluation and latest gate decision: ``models show``."""
    details = Table.grid(padding=(0, 2))
    details.add_column(style="bold")
    details.add_column()
    rows: list[tuple[str, Any]] = [
        ("model", f"{model.ref}  {_status(model.status)}"), ("live", _live(model.live_services) or "no"),
        ("kind", model.kind), ("base model", model.base_model), ("artifact", model.artifact_path),
        ("catalog", model.catalog_hash), ("dataset", f"{model.dataset_version} ({model.dataset_hash})" if model.dataset_version else "-"),
        ("training job", model.job_id if model.job_id is not None else "-"), ("config hash", model.config_hash),
        ("artifact hash", model.artifact_hash or "-"), ("fingerprint", model.fingerprint),
        ("created", _when(model.created_at)),
    ]
    for key, value in rows:
        details.add_row(key, value if key == "model" else escape(str(value)))
    parts: list[RenderableType] = [details]
    if evaluations:
        parts.append(evaluation_table(evaluations[0]))
    else:
        parts.append(Text("No evaluation recorded.", style="dim"))
    if decisions:
        parts.append(decision_table(decisions[0]))
    drift = drift_notes([model])
    if drift is not None:
        parts.append(drift)
    return Group(*parts)


def evaluation_table(evaluation: EvaluationRecord) -> Table:
    table = Table(title=f"evaluation {evaluation.suite_version}/{evaluation.split}",
                  caption=f"{_when(evaluation.created_at)}"
                          + (f" · {evaluation.examples} examples" if evaluation.examples is not None else ""))
    table.add_column("metric", no_wrap=True)
    table.add_column("accuracy", justify="right")
    table.add_row("[bold]overall[/]", _pct(evaluation.overall))
    for prefix, values in (("category", evaluation.per_category), ("split", evaluation.per_split),
                           ("tool", evaluation.per_tool)):
        for key, value in values.items():
            table.add_row(f"{prefix}:{key}", _pct(value))
    for service, breakdown in evaluation.per_service.items():
        table.add_row(f"service:{service}", _pct(breakdown.get("overall")))
    return table


def decision_table(decision: GateDecision) -> Table:
    """Every check of a gate decision with its numbers; failed ones first."""
    head = f"[{_OUTCOME_STYLE[decision.outcome]}]{decision.outcome}[/]"
    if decision.candidate:
        head = f"gate decision {decision.id or ''} · {decision.candidate} vs {decision.baseline or 'nothing deployed'} · {head}"
    if decision.outcome is Outcome.PARTIAL:
        head += f" · deploy to {', '.join(decision.deploy_services)}; keep {', '.join(decision.keep_services)}"
    table = Table(title=head)
    for column, justify in (("check", "left"), ("scope", "left"), ("result", "left"), ("observed", "right"),
                            ("threshold", "right"), ("deployed", "right"), ("Δ points", "right"), ("message", "left")):
        table.add_column(column, justify=justify, no_wrap=column not in ("message",))  # type: ignore[arg-type]
    for check in sorted(decision.checks, key=lambda c: c.passed):
        table.add_row(
            f"{check.name}:{check.subject}" if check.subject else str(check.name),
            "" if check.scope == GLOBAL else check.scope,
            "[green]pass[/]" if check.passed else "[bold red]FAIL[/]",
            _pct(check.observed), _pct(check.threshold), _pct(check.baseline), _points(check.delta_points),
            escape(check.message),
        )
    return table


def history_table(rows: Sequence[DeploymentRecord], *, title: str | None = None) -> Table:
    """Deploys, rollbacks and archives, newest first: ``Registry.history(name)``."""
    table = Table(title=title)
    for column in ("when", "action", "version", "service", "replaced", "actor", "gate", "notes"):
        table.add_column(column, no_wrap=column != "notes")
    for r in rows:
        extra = {k: v for k, v in r.config.items() if k != "from_version"}
        notes = escape(r.notes) + (f" [dim]{escape(json.dumps(extra, default=str))}[/]" if extra else "")
        # A deploy row's previous_version is the version it replaced; a rollback row keeps the
        # replaced version in its config (its previous_version is where the next rollback goes).
        replaced = r.config.get("from_version") if r.action is Action.ROLLBACK else r.previous_version
        if r.action is Action.ARCHIVE:
            replaced = None
        table.add_row(_when(r.created_at), f"[{_ACTION_STYLE[r.action]}]{r.action}[/]", r.version,
                      "all" if r.service == ALL_SERVICES else r.service, replaced or "-", escape(r.actor),
                      str(r.decision_id) if r.decision_id is not None else "-", notes)
    return table


def diff_view(result: ModelDiff) -> Group:
    """What changed from ``a`` to ``b``: fields, config, catalog and metrics: ``models diff``."""
    parts: list[RenderableType] = [Text(f"{result.a.ref} → {result.b.ref}", style="bold")]
    changes = Table(title="model and config", show_header=True)
    for column in ("field", result.a.version, result.b.version):
        changes.add_column(column)
    for change in [*result.fields, *(_prefixed(c) for c in result.config)]:
        changes.add_row(change.path, _value(change.a), _value(change.b))
    parts.append(changes if changes.row_count else Text("Same config, dataset and base model.", style="dim"))
    if result.catalog.changes:
        table = diff_table(result.catalog)
        table.title = f"catalog: {result.catalog.rating}"
        parts.append(table)
    else:
        parts.append(Text("Same tool catalog.", style="dim"))
    if result.metrics:
        metrics = Table(title=f"metrics ({result.suites[0] or 'no evaluation'} → {result.suites[1] or 'no evaluation'})")
        for column in ("metric", result.a.version, result.b.version, "Δ points"):
            metrics.add_column(column, justify="left" if column == "metric" else "right", no_wrap=True)
        for delta in result.metrics:
            metrics.add_row(delta.metric, _pct(delta.a), _pct(delta.b), _points(delta.delta_points))
        parts.append(metrics)
    else:
        parts.append(Text("Neither model has an evaluation.", style="dim"))
    parts.extend(Text(f"note: {n}", style="yellow") for n in result.notes)
    return Group(*parts)


def _prefixed(change: FieldChange) -> FieldChange:
    return FieldChange(f"config.{change.path}", change.a, change.b)


def _status(status: ModelStatus) -> str:
    return f"[{_STATUS_STYLE[status]}]{status}[/]"


def _live(services: Sequence[str]) -> str:
    return ", ".join("all" if s == ALL_SERVICES else s for s in services)


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _points(value: float | None) -> str:
    if value is None:
        return "-"
    style = "green" if value > 0 else "red" if value < 0 else "dim"
    return f"[{style}]{value:+.1f}[/]"


def _value(value: Any) -> str:
    if value is None:
        return "[dim]-[/]"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return escape(text if len(text) <= 60 else text[:59] + "…")
