"""`tooltune models …`: the model registry from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tooltune.cli.console import console

app = typer.Typer(help="The model registry: list, show, deploy, roll back, compare versions.", no_args_is_help=True)

DbOption = Annotated[Optional[str], typer.Option("--db", help="SQLAlchemy URL (default: $TOOLTUNE_DB_URL, else .tooltune/registry.db).")]
ActorOption = Annotated[Optional[str], typer.Option(help="Who is acting (default: the login name).")]


def _registry(db: str | None):
    from tooltune.registry import Registry

    return Registry(url=db)


def _actor(actor: str | None) -> str:
    import getpass

    return actor or getpass.getuser()


@app.command("list")
def models_list(name: Annotated[Optional[str], typer.Argument(help="Only versions of this model.")] = None, db: DbOption = None) -> None:
    """Every registered model version with its status, where it is live, and whether it is stale."""
    from tooltune.registry.present import drift_notes, models_table

    with _registry(db) as reg:
        models = reg.list_models(name)
        console.print(models_table(models))
        notes = drift_notes(models)
        if notes is not None:
            console.print(notes, soft_wrap=True)  # the migrate command stays one line, to copy


@app.command("check")
def models_check(
    watch: Annotated[Optional[list[str]], typer.Option(help="A live tool source, KIND:TARGET (mcp-http:URL, 'mcp-stdio:CMD', openapi:PATH, file:PATH); repeatable.")] = None,
    config: Annotated[Optional[Path], typer.Option(help="Pipeline YAML: check against its services.")] = None,
    db: DbOption = None,
) -> None:
    """Compare every deployed version's tools with the live ones; a breaking change marks it stale
    (its service's requests fall back). Exits 2 when a version is stale, for schedules and CI."""
    from tooltune.errors import ConfigError
    from tooltune.registry.present import drift_notes
    from tooltune.tools.sources import discover_sources, parse_source

    sources = [parse_source(w) for w in watch or []]
    if config is not None:
        from tooltune.pipeline import PipelineConfig

        sources += PipelineConfig.load(config).services
    if not sources:
        raise ConfigError("models check: give the live tools to compare with: --watch KIND:TARGET (repeatable) or "
                          "--config pipeline.yaml.")
    live = discover_sources(sources)
    with _registry(db) as reg:
        drift = reg.check_live_models(live)
        models = [m for m in reg.list_models() if m.live_services]
    console.print(f"checked {len(models)} deployed versions against {len(live)} live tools "
                  f"({', '.join(live.services) or 'no service name'})")
    notes = drift_notes(models)
    console.print(notes if notes is not None else "Every deployed version matches the live tools.", soft_wrap=True)
    if any(d.stale for d in drift):
        raise typer.Exit(2)


@app.command("catalog")
def models_catalog(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the catalog JSON.")],
    live: Annotated[bool, typer.Option(help="With each drifted service's live tools (as last checked) instead of the trained ones.")] = False,
    db: DbOption = None,
) -> None:
    """Write the catalog a version was trained on, or with --live the one to migrate its data to."""
    from tooltune.registry import parse_ref

    with _registry(db) as reg:
        model = reg.resolve(ref)
        catalog = reg.live_catalog(*parse_ref(model.ref)) if live else reg.catalog(model.catalog_hash)
    catalog.save(output)
    console.print(f"{model.ref}: {len(catalog)} tools → {output}  [dim]catalog {catalog.hash}[/]")


@app.command("show")
def models_show(ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION (default: the latest version).")], db: DbOption = None) -> None:
    """One model version: provenance, evaluations and gate decisions."""
    from tooltune.registry.present import model_view

    with _registry(db) as reg:
        model = reg.resolve(ref)
        console.print(model_view(model, reg.evaluations(model.name, model.version), reg.decisions(model.name, model.version)),
                      soft_wrap=bool(model.drift))  # a migrate command stays one line, to copy


@app.command("deploy")
def models_deploy(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION to deploy.")],
    gates: Annotated[Optional[Path], typer.Option(help="Gate config YAML (default: the built-in gates).")] = None,
    service: Annotated[Optional[list[str]], typer.Option(help="Deploy for these services only (repeatable).")] = None,
    notes: Annotated[str, typer.Option(help="Why; kept in the history.")] = "",
    force: Annotated[bool, typer.Option(help="Deploy even if the gates fail (recorded in the history).")] = False,
    actor: ActorOption = None,
    db: DbOption = None,
) -> None:
    """Deploy a version once it passes the gates (every check is printed when it does not)."""
    from tooltune.errors import GateError
    from tooltune.registry import GateConfig, parse_ref
    from tooltune.registry.present import decision_table, history_table

    name, version = parse_ref(ref)
    with _registry(db) as reg:
        try:
            reg.deploy(name, version, actor=_actor(actor), notes=notes, services=service or None,
                       gate_config=GateConfig.load(gates) if gates else None, force=force)
        except GateError as e:
            console.print(decision_table(e.decision))
            raise
        console.print(history_table(reg.history(name)[:5], title=f"{name}: latest deployments"))


@app.command("rollback")
def models_rollback(
    name: Annotated[str, typer.Argument(help="Model name.")],
    service: Annotated[Optional[str], typer.Option(help="Roll back one service only.")] = None,
    notes: Annotated[str, typer.Option(help="Why; kept in the history.")] = "",
    actor: ActorOption = None,
    db: DbOption = None,
) -> None:
    """Go back to the version deployed before the current one."""
    from tooltune.registry.present import history_table

    with _registry(db) as reg:
        reg.rollback(name, actor=_actor(actor), notes=notes, service=service)
        console.print(history_table(reg.history(name)[:5], title=f"{name}: latest deployments"))


@app.command("diff")
def models_diff(
    a: Annotated[str, typer.Argument(help="NAME@VERSION")],
    b: Annotated[str, typer.Argument(help="NAME@VERSION")],
    db: DbOption = None,
) -> None:
    """What differs between two versions: catalog, dataset, config and metrics."""
    from tooltune.registry.present import diff_view

    with _registry(db) as reg:
        console.print(diff_view(reg.diff_models(a, b)))


@app.command("history")
def models_history(name: Annotated[str, typer.Argument(help="Model name.")], db: DbOption = None) -> None:
    """Deploy / rollback / archive history, newest first."""
    from tooltune.registry.present import history_table

    with _registry(db) as reg:
        console.print(history_table(reg.history(name), title=name))
