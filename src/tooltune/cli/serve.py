"""`tooltune serve` (the OpenAI-compatible server, or a vLLM launch) and `tooltune chat` (a model in front of a live MCP server)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tooltune.cli.console import console
from tooltune.runtime.prefix import DEFAULT_PREFIX_CACHE_MB


def serve(
    model: Annotated[str, typer.Option(help="Base model to serve: HF id, local directory or `pypi:NAME`.")],
    adapter: Annotated[Optional[list[str]], typer.Option(help="NAME=RUN_DIR (or RUN_DIR) to serve as model NAME; repeatable.")] = None,
    registry: Annotated[Optional[str], typer.Option(help="Registry database URL: serve its models as NAME / NAME@VERSION.")] = None,
    constrained: Annotated[bool, typer.Option(help="Decode every turn under the offered tools' grammar (llguidance).")] = False,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    max_new_tokens: Annotated[int, typer.Option(help="Default and upper bound of max_tokens.")] = 256,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N.")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto (bf16 only where it is faster here; `tooltune status` shows the choice), fp32, bf16, fp16.")] = "auto",
    engine: Annotated[str, typer.Option(help="transformers (this process) or vllm (writes and runs `vllm serve`).")] = "transformers",
    dry_run: Annotated[bool, typer.Option(help="With --engine vllm: write and print the command, do not start it.")] = False,
    out: Annotated[Path, typer.Option(help="With --engine vllm: where the chat template and launch script go.")] = Path(".tooltune/vllm"),
    log_dir: Annotated[Optional[Path], typer.Option(help="Production logs: DIR/requests (every response, the format data.logs reads) and DIR/corrections (POST /v1/feedback). Default with --registry: .tooltune/serve-logs.")] = None,
    no_log: Annotated[bool, typer.Option("--no-log", help="Write no production logs, even with --registry.")] = False,
    log_max_mb: Annotated[float, typer.Option(help="Start a new log file past this size (and each UTC day).")] = 64.0,
    watch: Annotated[Optional[list[str]], typer.Option(help="Live tool source to check deployed registry versions against (schema drift): mcp-http:URL, 'mcp-stdio:CMD', openapi:PATH, file:PATH; repeatable.")] = None,
    drift_interval: Annotated[float, typer.Option(help="Minutes between drift checks of --watch sources (0: only at start).")] = 10.0,
    prefix_cache_mb: Annotated[int, typer.Option(help="MiB of prompt-prefix KV caches kept across requests; 0 turns prefix caching off.")] = DEFAULT_PREFIX_CACHE_MB,
    max_batch: Annotated[int, typer.Option(help="Most concurrent requests for one model generated together.")] = 8,
    batch_window_ms: Annotated[float, typer.Option(help="How long a request waits for others to batch with.")] = 20.0,
    trusted_proxy: Annotated[Optional[list[str]], typer.Option(help="Reverse proxy whose X-Forwarded-For is believed (repeatable).")] = None,
    allowed_host: Annotated[Optional[list[str]], typer.Option(help="Host header name answered (repeatable; default on loopback: localhost, 127.0.0.1, ::1).")] = None,
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body accepted, in bytes.")] = 4 << 20,
) -> None:
    """Serve an OpenAI-compatible /v1/chat/completions with tool calling (or launch vLLM for it)."""
    from pydantic import ValidationError

    from tooltune.errors import ConfigError
    from tooltune.serve.settings import ServeSettings, parse_adapter_options
    from tooltune.tools.sources import parse_source

    try:
        settings = ServeSettings(model=model, adapters=parse_adapter_options(adapter or []), registry_url=registry,
                                 constrained=constrained, host=host, port=port, max_new_tokens=max_new_tokens,
                                 device=device, dtype=dtype, engine=engine, log_dir=log_dir,  # type: ignore[arg-type]
                                 request_log=not no_log, log_max_mb=log_max_mb,
                                 watch=[parse_source(w) for w in watch or []], drift_interval=drift_interval,
                                 prefix_cache_mb=prefix_cache_mb, max_batch=max_batch, batch_window_ms=batch_window_ms,
                                 trusted_proxies=trusted_proxy or [], allowed_hosts=allowed_host, max_body_bytes=max_body_bytes)
    except ValidationError as e:
        raise ConfigError("serve: " + "; ".join(f"{'.'.join(map(str, err['loc'])) or 'options'}: "
                                                f"{err['msg'].removeprefix('Value error, ')}" for err in e.errors())) from e
    if settings.engine == "vllm":
        _launch_vllm(settings, out, dry_run)
        return
    import uvicorn

    from tooltune.serve.app import create_app

    app = create_app(settings)
    typer.echo(f"tooltune serve: {', '.join(app.state.pool.names)} on http://{settings.host}:{settings.port}/v1", err=True)
    if app.state.request_log is not None:
        typer.echo(f"tooltune serve: logging requests to {app.state.request_log.directory} (POST /v1/feedback to rate them)",
                   err=True)
    if settings.watch:
        typer.echo(f"tooltune serve: checking deployed versions against {len(settings.watch)} live tool sources every "
                   f"{settings.drift_interval:g} min", err=True)
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
    model: Annotated[str, typer.Option(help="The model to chat with (base: pypi:NAME, HF id or directory; run dir; with --endpoint: its name there).")],
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
    log_dir: Annotated[Optional[Path], typer.Option(help="Write every turn, with its calls' MCP results, to DIR/requests (the format data.logs reads).")] = None,
) -> None:
    """Chat with a model that calls a live MCP server's tools; --compare shows two models side by side.
    With --endpoint on `tooltune serve`, each call's MCP result is sent back as feedback on its response."""
    from tooltune.serve.chat import comparison_view, discover_tools, read_queries, run_chat

    tools = list(discover_tools(mcp_stdio=mcp_stdio, mcp_http=mcp_http))
    sides = []
    if compare:
        sides.append((f"base: {compare}", _turn_model(compare, None, endpoint, service, max_new_tokens, constrained)))
    tuned = model + (f" + {adapter}" if adapter else "")
    sides.append((f"tuned: {tuned}" if compare else tuned, _turn_model(model, adapter, endpoint, service, max_new_tokens, constrained)))
    console.print(f"[dim]{len(tools)} tools: {', '.join(t.name for t in tools)}[/]")

    log = None
    if log_dir is not None:
        from tooltune.data.log_writer import LogWriter

        log = LogWriter(log_dir / "requests")

    def answer(batch: list[str]) -> None:
        for row in run_chat(sides, batch, tools, mcp_stdio=mcp_stdio, mcp_http=mcp_http, max_steps=max_steps, log=log):
            console.print(comparison_view(row))

    try:
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
    finally:
        if log is not None:
            log.close()
            console.print(f"[dim]turns logged to {log.directory} ({log.stats['written']} lines)[/]")


def _turn_model(model: str, adapter: Optional[Path], endpoint: Optional[str], service: Optional[str], max_new_tokens: int,
                constrained: bool):
    if endpoint:
        from tooltune.errors import ConfigError
        from tooltune.serve.chat import EndpointModel

        if adapter is not None:
            raise ConfigError("chat: --adapter applies to in-process models; with --endpoint, name the served adapter in --model.")
        return EndpointModel(endpoint, model, service=service, max_tokens=max_new_tokens)
    from tooltune.runtime.generate import Generator
    from tooltune.runtime.model import load_model

    return Generator(load_model(model, adapter), max_new_tokens=max_new_tokens, batch_size=1, constrained=constrained)
