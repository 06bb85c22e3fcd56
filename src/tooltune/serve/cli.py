"""`tooltune serve` and `tooltune chat`, registered on the main app by :func:`register` (cli.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    """Add ``serve`` and ``chat`` to the top level of ``app``."""
    app.command("serve")(serve)
    app.command("chat")(chat)


def serve(
    model: Annotated[str, typer.Option(help="Base model: HF id, directory, `builtin` or `pypi:NAME`.")] = "builtin",
    adapter: Annotated[Optional[list[str]], typer.Option(help="NAME=RUN_DIR (or RUN_DIR) to serve as model NAME; repeatable.")] = None,
    registry: Annotated[Optional[str], typer.Option(help="Registry database URL: serve its models as NAME / NAME@VERSION.")] = None,
    constrained: Annotated[bool, typer.Option(help="Decode every turn under the offered tools' grammar (llguidance).")] = False,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    max_new_tokens: Annotated[int, typer.Option(help="Default and upper bound of max_tokens.")] = 256,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N.")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto, fp32, bf16, fp16.")] = "auto",
    engine: Annotated[str, typer.Option(help="transformers (this process) or vllm (writes and runs `vllm serve`).")] = "transformers",
    dry_run: Annotated[bool, typer.Option(help="With --engine vllm: write and print the command, do not start it.")] = False,
    out: Annotated[Path, typer.Option(help="With --engine vllm: where the chat template and launch script go.")] = Path(".tooltune/vllm"),
    trusted_proxy: Annotated[Optional[list[str]], typer.Option(help="Reverse proxy whose X-Forwarded-For is believed (repeatable).")] = None,
    allowed_host: Annotated[Optional[list[str]], typer.Option(help="Host header name answered (repeatable; default on loopback: localhost, 127.0.0.1, ::1).")] = None,
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body accepted, in bytes.")] = 4 << 20,
) -> None:
    """Serve an OpenAI-compatible /v1/chat/completions with tool calling (or launch vLLM for it)."""
    from tooltune.serve.settings import ServeSettings, parse_adapter_options

    settings = ServeSettings(model=model, adapters=parse_adapter_options(adapter or []), registry_url=registry,
                             constrained=constrained, host=host, port=port, max_new_tokens=max_new_tokens,
                             device=device, dtype=dtype, engine=engine,  # type: ignore[arg-type]
                             trusted_proxies=trusted_proxy or [], allowed_hosts=allowed_host, max_body_bytes=max_body_bytes)
    if settings.engine == "vllm":
        _launch_vllm(settings, out, dry_run)
        return
    import uvicorn

    from tooltune.serve.app import create_app

    app = create_app(settings)
    typer.echo(f"tooltune serve: {', '.join(app.state.pool.names)} on http://{settings.host}:{settings.port}/v1", err=True)
    # proxy_headers=False: X-Forwarded-For counts only from settings.trusted_proxies (tooltune.httpguard).
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", proxy_headers=False)


def _launch_vllm(settings, out: Path, dry_run: bool) -> None:
    import shutil
    import subprocess

    from tooltune.errors import ConfigError
    from tooltune.serve.vllm import vllm_plan

    plan = vllm_plan(settings, out)
    typer.echo(plan.command)
    typer.echo(f"# chat template: {plan.chat_template}  launch script: {plan.script}", err=True)
    for note in plan.notes:
        typer.echo(f"# note: {note}", err=True)
    if dry_run:
        return
    if shutil.which(plan.argv[0]) is None:
        raise ConfigError("serve --engine vllm: the `vllm` command is not installed here (pip install vllm, on a "
                          "machine with a supported GPU); use --dry-run to only write the command.")
    raise typer.Exit(subprocess.run(plan.argv).returncode)


def chat(
    model: Annotated[str, typer.Option(help="The model to chat with (base, run dir, `builtin`; with --endpoint: its name there).")],
    mcp_stdio: Annotated[Optional[str], typer.Option(help="Command line that starts the MCP server over stdio.")] = None,
    mcp_http: Annotated[Optional[str], typer.Option(help="URL of an MCP server speaking streamable HTTP.")] = None,
    adapter: Annotated[Optional[Path], typer.Option(help="Run directory to apply on --model (in-process models).")] = None,
    compare: Annotated[Optional[str], typer.Option(help="A second model (e.g. the base) run side by side on the same queries.")] = None,
    endpoint: Annotated[Optional[str], typer.Option(help="OpenAI-compatible endpoint serving the models, e.g. http://127.0.0.1:8000/v1.")] = None,
    service: Annotated[Optional[str], typer.Option(help="With --endpoint: send X-Tooltune-Service (per-service routing).")] = None,
    queries: Annotated[Optional[Path], typer.Option(help="File with one query per line (non-interactive).")] = None,
    max_steps: Annotated[int, typer.Option(help="Model turns per query before giving up.")] = 6,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens per model turn.")] = 256,
    constrained: Annotated[bool, typer.Option(help="In-process models: decode under the tools' grammar (llguidance).")] = False,
) -> None:
    """Chat with a model that calls a live MCP server's tools; --compare shows two models side by side."""
    from rich.console import Console

    from tooltune.serve.chat import comparison_view, discover_tools, read_queries, run_chat

    console = Console(width=None if _tty() else 160)
    tools = list(discover_tools(mcp_stdio=mcp_stdio, mcp_http=mcp_http))
    sides = []
    if compare:
        sides.append((f"base: {compare}", _turn_model(compare, None, endpoint, service, max_new_tokens, constrained)))
    tuned = model + (f" + {adapter}" if adapter else "")
    sides.append((f"tuned: {tuned}" if compare else tuned, _turn_model(model, adapter, endpoint, service, max_new_tokens, constrained)))
    console.print(f"[dim]{len(tools)} tools: {', '.join(t.name for t in tools)}[/]")

    def answer(batch: list[str]) -> None:
        for row in run_chat(sides, batch, tools, mcp_stdio=mcp_stdio, mcp_http=mcp_http, max_steps=max_steps):
            console.print(comparison_view(row))

    if queries is not None:
        answer(read_queries(queries))
        return
    while True:
        try:
            query = console.input("[bold]you>[/] ").strip()
        except (EOFError, KeyboardInterrupt):
            break
        if query in ("", "exit", "quit"):
            break
        answer([query])


def _turn_model(model: str, adapter: Optional[Path], endpoint: Optional[str], service: Optional[str], max_new_tokens: int,
                constrained: bool):
    if endpoint:
        from tooltune.errors import ConfigError
        from tooltune.serve.chat import EndpointModel

        if adapter is not None:
            raise ConfigError("chat: --adapter applies to in-process models; with --endpoint, name the served adapter in --model.")
        return EndpointModel(endpoint, model, service=service, max_tokens=max_new_tokens)
    from tooltune.eval.generate import Generator
    from tooltune.eval.model import load_model

    return Generator(load_model(model, adapter), max_new_tokens=max_new_tokens, batch_size=1, constrained=constrained)


def _tty() -> bool:
    import os
    import sys

    return sys.stdout.isatty() or bool(os.environ.get("COLUMNS"))
