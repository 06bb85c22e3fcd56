"""`tooltune api`: the job API and its dashboard."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def api(
    host: Annotated[str, typer.Option(help="Interface to listen on; read-only routes are open only on loopback.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8600,
    token: Annotated[Optional[str], typer.Option(envvar="TOOLTUNE_API_TOKEN", show_envvar=True,
                                                 help="Bearer token for mutating routes (default: a random one, printed).")] = None,
    registry: Annotated[Optional[str], typer.Option(help="Registry database URL (default: $TOOLTUNE_DB_URL or .tooltune/registry.db).")] = None,
    work_dir: Annotated[Path, typer.Option(help="Where job runs, worker logs, datasets and evaluations go.")] = Path(".tooltune/api"),
    open_reads: Annotated[Optional[bool], typer.Option("--open-reads/--closed-reads",
                                                       help="Serve read-only routes without a token (default: on loopback only).")] = None,
    trusted_proxy: Annotated[Optional[list[str]], typer.Option(help="Reverse proxy whose X-Forwarded-For is believed (repeatable).")] = None,
    allowed_host: Annotated[Optional[list[str]], typer.Option(help="Host header name answered (repeatable; default on loopback: localhost, 127.0.0.1, ::1).")] = None,
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body accepted, in bytes.")] = 1 << 20,
) -> None:
    """Serve the job API (datasets, training jobs, models, evaluations) and its dashboard at /."""
    import secrets

    import uvicorn

    from tooltune.api.app import create_app
    from tooltune.api.settings import ApiSettings

    generated = token is None
    settings = ApiSettings(host=host, port=port, token=token or secrets.token_urlsafe(18), registry_url=registry,
                           work_dir=work_dir, open_reads=open_reads, trusted_proxies=trusted_proxy or [],
                           allowed_hosts=allowed_host, max_body_bytes=max_body_bytes)
    app = create_app(settings)
    typer.echo(f"tooltune api: http://{settings.host}:{settings.port}/ (registry {app.state.registry.url})", err=True)
    if generated:
        typer.echo(f"tooltune api: no --token or $TOOLTUNE_API_TOKEN given; this run's token is {settings.token}", err=True)
    # proxy_headers=False: X-Forwarded-For counts only from settings.trusted_proxies (tooltune.httpguard).
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", proxy_headers=False)
