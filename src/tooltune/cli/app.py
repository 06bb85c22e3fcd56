"""The ``tooltune`` command line: the root typer app and the one place that lists its commands.

Each command lives in the module of its group (``cli/data.py`` holds ``tooltune data …``) or of
its room (``cli/serve.py`` holds ``tooltune serve`` and ``tooltune chat``); it parses its
options, calls one library function and prints the result. Those modules import their heavy
dependencies inside the commands, so that ``tooltune --help`` stays fast. Only :func:`main`
catches ``TooltuneError`` broadly: it prints ``TypeName: message`` and exits 1.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from tooltune.cli import api, collect, data, demo, eval, export, graph, models, ops, pipeline, publish, serve, tools, train
from tooltune.cli.console import err_console
from tooltune.errors import TooltuneError

app = typer.Typer(help="Make language models call your own tools reliably.", no_args_is_help=True, add_completion=False)

# `tooltune --help` lists the commands, then the groups, each in the order registered here.
app.command("demo-server")(demo.demo_server)
app.command("train")(train.train_cmd)
app.command("compare")(eval.compare_cmd)
app.command("serve")(serve.serve)
app.command("chat")(serve.chat)
app.command("export")(export.export_cmd)
app.command("api")(api.api)
app.command("publish")(publish.publish)
app.command("collect")(collect.collect)
app.command("status")(ops.status)
app.command("plan")(ops.plan)

app.add_typer(tools.app, name="tools")
app.add_typer(data.app, name="data")
data.app.command("from-graph")(graph.data_from_graph)  # a data command whose source is the code graph
app.add_typer(eval.app, name="eval")
app.add_typer(pipeline.app, name="pipeline")
app.add_typer(models.app, name="models")
app.add_typer(graph.app, name="graph")

def _third_party_log() -> Path:
    """Where transformers/PEFT/TRL chatter goes instead of the terminal ($TOOLTUNE_LOG_FILE)."""
    return Path(os.environ.get("TOOLTUNE_LOG_FILE") or Path(".tooltune") / "logs" / "third-party.log")


def main() -> None:
    """The ``tooltune`` console script."""
    from tooltune.runtime.quiet import route_third_party

    route_third_party(_third_party_log())
    try:
        app()
    except TooltuneError as e:
        err_console.print(f"[bold red]{type(e).__name__}[/]: {e}", highlight=False)
        raise SystemExit(1) from None
