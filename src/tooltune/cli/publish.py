"""`tooltune publish`: serve a service's training examples and test scenarios to the orchestrator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def publish(
    service: Annotated[str, typer.Option(help="Service name, as on the tools of its catalog.")],
    data: Annotated[Path, typer.Option(help="Folder of example JSONL files, metadata.yaml and catalog.json.")],
    port: Annotated[int, typer.Option(help="Port to serve on.")],
    tests: Annotated[Optional[Path], typer.Option(help="Test scenarios JSONL (default: DIR/tests.jsonl, else DIR's test splits).")] = None,
    catalog: Annotated[Optional[Path], typer.Option(help="Tool catalog JSON (default: DIR/catalog.json).")] = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    key_file: Annotated[Optional[Path], typer.Option(help="HS256 secret or RS256 public key (PEM); default $TOOLTUNE_PUBLISH_KEY.")] = None,
    algorithm: Annotated[str, typer.Option(help="HS256 or RS256.")] = "HS256",
    rate_limit: Annotated[int, typer.Option(help="Requests per caller per window.")] = 100,
    rate_window: Annotated[float, typer.Option(help="Rate-limit window in seconds.")] = 3600.0,
    db: Annotated[Optional[str], typer.Option(help="Audit log database URL (default: $TOOLTUNE_DB_URL, else .tooltune/registry.db).")] = None,
    issuer: Annotated[str, typer.Option(help="Tokens must carry this iss claim.")] = "tooltune",
    audience: Annotated[Optional[str], typer.Option(help="Tokens must carry this aud claim (default: the service name).")] = None,
    max_token_lifetime: Annotated[float, typer.Option(help="Longest token lifetime (exp - iat) accepted, in seconds.")] = 86400.0,
    trusted_proxy: Annotated[Optional[list[str]], typer.Option(help="Reverse proxy whose X-Forwarded-For is believed (repeatable).")] = None,
    allowed_host: Annotated[Optional[list[str]], typer.Option(help="Host header name answered (repeatable; default on loopback: localhost, 127.0.0.1, ::1).")] = None,
) -> None:
    """Serve a service's training examples and test scenarios to the orchestrator (JWT, audit, rate limit)."""
    import uvicorn

    from tooltune.publish.app import create_app
    from tooltune.publish.config import PublishConfig, read_key

    config = PublishConfig.parse({
        "service": service, "data_dir": data, "tests": tests, "catalog": catalog, "key": read_key(key_file),
        "algorithm": algorithm, "rate_limit": rate_limit, "rate_window_s": rate_window, "db_url": db, "host": host,
        "issuer": issuer, "audience": audience, "max_token_lifetime_s": max_token_lifetime,
        "trusted_proxies": trusted_proxy or [], "allowed_hosts": allowed_host})
    app = create_app(config)
    document = app.state.publisher.data.document()
    typer.echo(f"publishing {service}: {document.counts.total} training examples, {document.test_data.total} tests "
               f"on http://{host}:{port}", err=True)
    # proxy_headers=False: X-Forwarded-For counts only from config.trusted_proxies (tooltune.httpguard).
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False)
