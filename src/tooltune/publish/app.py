"""The publisher's HTTP API: a FastAPI router a service team runs alone (:func:`create_app`, what
``tooltune publish`` serves) or includes in its own FastAPI app (:func:`publisher_router`).

- ``GET /.well-known/mcp-training-data.json``: public; what is published and how to fetch it.
- ``GET /mcp/training-dataset`` and ``GET /mcp/test-dataset``: paged examples (``format``,
  ``since``, ``page``, ``page_size``) with an ETag; ``If-None-Match`` answers 304.
- ``GET /mcp/catalog``: the tools the examples were written against.

The three data routes need a bearer token with the ``ml_orchestrator`` role (401 without a valid
one, 403 with another role), count against the caller's rate limit (429 with Retry-After), and
every request to them — allowed, refused or malformed — is appended to the audit log. The audit
sits in the route class rather than in a middleware so that it travels with the router into a
team's own app. :func:`create_app` adds the request guard (:mod:`tooltune.httpguard`: Host on
loopback, body size, X-Forwarded-For only from ``trusted_proxies``); a team mounting the router in
its own app keeps its own.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request, Response, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer

from tooltune.httpguard import client_address, default_allowed_hosts, install
from tooltune.publish.audit import AuditLog
from tooltune.publish.auth import AuthFailure, Caller, require_role, verify_token
from tooltune.publish.config import PublishConfig
from tooltune.data.publication import ORCHESTRATOR_ROLE, WELL_KNOWN_PATH, TrainingDataDocument
from tooltune.publish.ratelimit import RateLimiter
from tooltune.publish.store import PublishedData

Format = Literal["tooltune", "openai", "chatml"]
_BEARER = HTTPBearer(auto_error=False, description="JWT with the ml_orchestrator role in its roles claim.")
_OUTCOMES = {200: "allowed", 304: "not_modified", 400: "refused", 401: "unauthenticated", 403: "forbidden",
             413: "refused", 422: "invalid_request", 429: "rate_limited"}


class Publisher:
    """The state behind one service's routes: its data, audit log and rate limiter."""

    def __init__(self, config: PublishConfig, data: PublishedData | None = None, audit: AuditLog | None = None,
                 limiter: RateLimiter | None = None):
        self.config = config
        self.data = data or PublishedData.load(config)
        self.audit = audit or AuditLog(config.db_url)
        self.limiter = limiter or RateLimiter(config.rate_limit, config.rate_window_s)

    def authorize(self, request: Request, _scheme: Annotated[Any, Security(_BEARER)] = None) -> Caller:
        """Verify the token, count the request, check the role; raise the refusal as an HTTP error.

        ``_scheme`` only declares the bearer scheme in the OpenAPI document; the header is read
        here so that a malformed one gets its own message."""
        failure: AuthFailure | None = None
        caller: Caller | None = None
        try:
            caller = verify_token(request.headers.get("authorization"), self.config.key.get_secret_value(),
                                  self.config.algorithm, self.config.token_rules)
        except AuthFailure as e:
            failure = e
        request.state.caller = caller
        # Unauthenticated requests are limited per client address, so guessing tokens is limited too.
        key = caller.subject if caller else f"address:{request.client.host if request.client else 'unknown'}"
        retry_after = self.limiter.acquire(key)
        if retry_after is not None:
            raise HTTPException(429, f"rate limit of {self.config.rate_limit} requests per "
                                     f"{self.config.rate_window_s:g} s reached; retry after {retry_after} s",
                                headers={"Retry-After": str(retry_after)})
        if caller is not None:
            try:
                require_role(caller, ORCHESTRATOR_ROLE)
            except AuthFailure as e:
                failure = e
        if failure is not None or caller is None:
            failure = failure or AuthFailure(401, "unauthenticated", "no valid token")
            headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if failure.status == 401 else None
            raise HTTPException(failure.status, failure.detail, headers=headers)
        return caller


def publisher_router(publisher: Publisher) -> APIRouter:
    """The publisher's routes, to serve alone or include in another FastAPI app."""
    service = publisher.config.service

    class AuditedRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def audited(request: Request) -> Response:
                try:
                    response = await handler(request)
                except HTTPException as e:
                    await _audit(request, e.status_code, str(e.detail))
                    raise
                except RequestValidationError as e:
                    await _audit(request, 422, "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}"
                                                         for err in e.errors()))
                    raise
                await _audit(request, response.status_code, None)
                return response

            return audited

    async def _audit(request: Request, status: int, detail: str | None) -> None:
        caller: Caller | None = getattr(request.state, "caller", None)
        resource = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        await run_in_threadpool(
            publisher.audit.record, service=service, subject=caller.subject if caller else None,
            roles=caller.roles if caller else [], method=request.method, resource=resource[:2000], status_code=status,
            outcome=_OUTCOMES.get(status, "error"), detail=detail, client=client_address(request.scope))

    public = APIRouter()
    guarded = APIRouter(route_class=AuditedRoute, dependencies=[Depends(publisher.authorize)])

    @public.get(WELL_KNOWN_PATH, response_model=TrainingDataDocument, tags=["publish"])
    def well_known() -> TrainingDataDocument:
        """What this service publishes, and how to fetch it."""
        return publisher.data.document()

    def dataset(name: str) -> Callable[..., Response]:
        def serve(
            format: Annotated[Format, Query(description="Example format: tooltune, openai or chatml.")] = "tooltune",
            since: Annotated[datetime | None, Query(description="Only examples created after this ISO 8601 time.")] = None,
            page: Annotated[int, Query(ge=1, le=1_000_000, description="Page number, from 1.")] = 1,
            page_size: Annotated[int | None, Query(ge=1, le=1000, description="Examples per page.")] = None,
            if_none_match: Annotated[str | None, Header(description="ETag of a copy the caller holds.")] = None,
        ) -> Response:
            size = page_size or publisher.config.page_size
            result = publisher.data.page(name, fmt=format, since=since, page=page, page_size=size)
            headers = {"ETag": result.etag, "Cache-Control": "private, no-cache"}
            if if_none_match and _matches(if_none_match, result.etag):
                return Response(status_code=304, headers=headers)
            body = {"service": service, "dataset": name, "version": publisher.data.version, "format": format,
                    "since": since.isoformat() if since else None, "page": page, "page_size": size,
                    "total": result.total, "pages": result.pages,
                    "next_page": page + 1 if page < result.pages else None,
                    "items": result.items, "skipped": result.skipped}
            return JSONResponse(body, headers=headers)

        serve.__doc__ = f"A page of the service's {name} examples (role {ORCHESTRATOR_ROLE})."
        return serve

    guarded.add_api_route("/mcp/training-dataset", dataset("training"), methods=["GET"], tags=["publish"],
                          responses=_REFUSALS)
    guarded.add_api_route("/mcp/test-dataset", dataset("test"), methods=["GET"], tags=["publish"], responses=_REFUSALS)

    @guarded.get("/mcp/catalog", tags=["publish"], responses=_REFUSALS)
    def catalog() -> dict[str, Any]:
        """The tool catalog the examples were written against (tooltune catalog JSON)."""
        return publisher.data.catalog.to_dict()

    router = APIRouter()
    router.include_router(public)
    router.include_router(guarded)
    return router


_REFUSALS: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified (If-None-Match matched the ETag)."},
    401: {"description": "No token, or an expired, malformed or tampered one."},
    403: {"description": "The token lacks the ml_orchestrator role."},
    429: {"description": "Rate limit reached; see Retry-After."},
}


def _matches(if_none_match: str, etag: str) -> bool:
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


def create_app(config: PublishConfig, publisher: Publisher | None = None) -> FastAPI:
    """A FastAPI app serving one service's publisher (``tooltune publish``)."""
    publisher = publisher or Publisher(config)
    app = FastAPI(title=f"tooltune publisher: {config.service}", version="1")
    app.include_router(publisher_router(publisher))
    app.state.publisher = publisher

    async def refused(scope: dict[str, Any], status: int, message: str) -> None:
        # Refused before any route ran (Host, body size): audited like the routes' own refusals.
        resource = scope["path"] + (f"?{scope['query_string'].decode('latin-1')}" if scope.get("query_string") else "")
        await run_in_threadpool(
            publisher.audit.record, service=config.service, subject=None, roles=[], method=scope["method"],
            resource=resource[:2000], status_code=status, outcome=_OUTCOMES.get(status, "refused"), detail=message,
            client=client_address(scope))

    install(app, max_body_bytes=config.max_body_bytes, allowed_hosts=default_allowed_hosts(config.host, config.allowed_hosts),
            trusted_proxies=config.trusted_proxies, on_refusal=refused)
    return app
