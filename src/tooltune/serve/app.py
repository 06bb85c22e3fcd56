"""The OpenAI-compatible server: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Every turn is rendered by :func:`~tooltune.formats.chat.render_chat` and read back by the
model's :func:`~tooltune.formats.chat.call_format_for` parser (through
:class:`~tooltune.runtime.generate.Generator`), the bytes and parser of training and evaluation,
so served accuracy is evaluated accuracy. Requests that arrive together are generated in one batch,
and their tool listings' KV caches are kept across requests (:mod:`tooltune.serve.batching`).

``tool_choice``:

- ``auto`` (default with tools): the model decides; with ``--constrained`` the turn is decoded
  under the grammar of the offered tools (a well-formed call of one of them, or text);
- ``none``: the tools are left out of the prompt and the turn is returned as text;
- ``required`` / a named function: the turn is decoded under the grammar of the offered tools
  (or of the one named) with the text branch removed, so a call is guaranteed, as vLLM does it.
  A named function gets exactly one call, and so does any grammar with ``parallel_tool_calls:
  false``: the turn ends after the first block instead of running on to ``max_tokens``.
  Grammars exist for the ``hermes`` call format only; other formats get a 400 naming
  ``tool_choice``.

Routing: ``model`` is ``base``, an adapter's name, or a registry model (``NAME@VERSION``, or
``NAME`` for the deployed version); the ``X-Tooltune-Service`` header names the service, so
``NAME`` resolves to the version live for that service (:mod:`tooltune.serve.models`).

A registry version that is stale for the request's service (its live tools changed in a
breaking way since training) is replaced by an earlier compatible version or the base, and the
response carries an ``X-Tooltune-Warning`` header (:mod:`tooltune.serve.drift`).

Production logs (``--log-dir``; on by default with a registry): every response is logged in the
format the data build reads, and ``POST /v1/feedback`` attaches an outcome or a correction to it
(:mod:`tooltune.serve.requestlog`, :mod:`tooltune.serve.feedback`).

Errors are OpenAI-shaped, ``{"error": {"message", "type", "param", "code"}}``: schema
violations and unsupported parameters are 400 with ``param`` the field path
(``messages[0].role``), unknown models 404. Only a fault of the server itself is a 500.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tooltune.errors import CatalogError, ConfigError, TemplateError
from tooltune.runtime.generate import CALL_TAGS, Generation, Prompt
from tooltune.runtime.model import LoadedModel
from tooltune.runtime.prefix import PrefixCache, prompt_prefix
from tooltune.formats.base import CallFormat, ParseKind
from tooltune.httpguard import client_address, default_allowed_hosts, install
from tooltune.serve.batching import Batcher
from tooltune.serve.drift import DriftMonitor
from tooltune.serve.feedback import add_feedback_route
from tooltune.serve.limits import check_tool_count, fit_to_context
from tooltune.serve.models import ModelNotFound, ModelPool, Served
from tooltune.serve.requestlog import RequestLog, served_entry
from tooltune.serve.schemas import ChatRequest, NamedToolChoice, RequestError, check_supported, conversation
from tooltune.serve.settings import SERVICE_HEADER, WARNING_HEADER, ServeSettings
from tooltune.tools.call import ToolCall
from tooltune.tools.catalog import Tool

logger = logging.getLogger(__name__)

@dataclass
class Turn:
    """One generated assistant turn, read with the model's parser."""

    content: str | None
    calls: list[ToolCall]
    finish_reason: str
    generation: Generation
    problem: str | None = None
    """Why call markup in the output did not parse (the parser's error), for the production log."""

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.calls:
            message["tool_calls"] = [openai_call(c) for c in self.calls]
        return message

    def usage(self) -> dict[str, int]:
        g = self.generation
        return {"prompt_tokens": g.prompt_tokens, "completion_tokens": g.new_tokens,
                "total_tokens": g.prompt_tokens + g.new_tokens}


def openai_call(call: ToolCall) -> dict[str, Any]:
    """A parsed call as an OpenAI ``tool_calls`` entry: arguments as a JSON string."""
    return {"id": call.id or f"call_{uuid.uuid4().hex[:24]}", "type": "function",
            "function": {"name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)}}


def read_turn(fmt: CallFormat, generation: Generation, *, tool_choice: Any, stop: list[str], parallel: bool = True) -> Turn:
    """Cut ``generation`` at the first stop string, parse it, and pick the finish reason.
    ``parallel=False`` (``parallel_tool_calls: false``) keeps the first call only."""
    text = generation.text
    cut = min((i for i in (text.find(s) for s in stop) if i != -1), default=-1)
    if cut != -1:
        text = text[:cut]
    finish = "length" if generation.truncated and cut == -1 else "stop"
    if tool_choice == "none":
        return Turn(text, [], finish, generation)
    parsed = fmt.parse(text)
    if parsed.kind is ParseKind.CALLS:
        calls = [ToolCall(c.name, c.arguments, id=f"call_{uuid.uuid4().hex[:24]}") for c in parsed.calls]
        calls = calls if parallel else calls[:1]
        return Turn(parsed.content or None, calls, "tool_calls", generation)
    # Malformed call markup is returned as the text it is, as other OpenAI-compatible servers do.
    return Turn(parsed.content if parsed.kind is ParseKind.NO_CALL else text, [], finish, generation, parsed.error)


class ChatService:
    """Turns a validated request into a generated :class:`Turn` (shared by both response modes)."""

    def __init__(self, pool: ModelPool, settings: ServeSettings):
        self.pool = pool
        self.settings = settings
        cache = PrefixCache(settings.prefix_cache_mb) if settings.prefix_cache_mb > 0 else None
        self.batcher = Batcher(pool, max_new_tokens=settings.max_new_tokens, max_batch=settings.max_batch,
                               window_ms=settings.batch_window_ms, prefix_cache=cache)

    def prepare(self, request: ChatRequest, service: str | None) -> tuple[Served, Prompt, str | None, int]:
        """Resolve the model and render the prompt; every client mistake raises RequestError here,
        before any response (or stream) has started."""
        check_supported(request)
        check_tool_count(request)
        try:
            served = self.pool.resolve(request.model, service)
        except ModelNotFound as e:
            raise RequestError("model", str(e), status=404, code="model_not_found") from e
        except ConfigError as e:  # the registry points at an artifact that does not load
            raise RequestError("model", str(e), status=400) from e
        tools = _tools(request)
        messages = conversation(request)
        choice = request.tool_choice or ("auto" if tools else "none")
        loaded = served.loaded
        offered = tools if choice != "none" else None
        try:
            text = loaded.render(messages, offered)
        except TemplateError as e:
            raise RequestError("messages", f"the conversation cannot be rendered with the model's chat template: {e}") from e
        prefix = prompt_prefix(loaded, messages, offered, text) if self.batcher.prefix_cache is not None else ""
        grammar = self._grammar(loaded, tools, choice, parallel=request.parallel_tool_calls is not False)
        limit = request.max_completion_tokens or request.max_tokens or self.settings.max_new_tokens
        limit = fit_to_context(loaded, text, min(limit, self.settings.max_new_tokens), tools=len(tools))
        return served, Prompt(text, prefix), grammar, limit

    def _grammar(self, loaded: LoadedModel, tools: list[Tool], choice: Any, *, parallel: bool) -> str | None:
        from tooltune.runtime.constrained import require_llguidance, tool_call_grammar

        forced = choice == "required" or isinstance(choice, NamedToolChoice)
        if not forced and not self.settings.constrained:
            return None
        try:
            require_llguidance()
            if isinstance(choice, NamedToolChoice):  # one call of that function, as OpenAI's API returns
                return tool_call_grammar(loaded.call_format, [t for t in tools if t.name == choice.function.name],
                                         allow_text=False, parallel=False)
            if choice == "none":
                return tool_call_grammar(loaded.call_format, [])
            return tool_call_grammar(loaded.call_format, tools, allow_text=not forced, parallel=parallel)
        except ConfigError as e:
            raise RequestError("tool_choice" if forced else None, f"{e} (model {loaded.name!r} writes "
                               f"{loaded.call_format.name} calls).") from e

    def generate(self, served: Served, prompt: Prompt, grammar: str | None, max_new_tokens: int,
                 streamer: Any = None) -> Generation:
        """Generate in the batching queue (:mod:`tooltune.serve.batching`), with requests arriving together."""
        return self.batcher.generate(served, replace(prompt, grammar=grammar, max_new_tokens=max_new_tokens, streamer=streamer))


def create_app(settings: ServeSettings, pool: ModelPool | None = None) -> FastAPI:
    """The FastAPI app serving ``pool`` (loaded from ``settings`` when not given)."""
    if pool is None:
        pool = ModelPool(settings, registry=_registry(settings))
    if settings.constrained:
        from tooltune.runtime.constrained import require_llguidance, tool_call_grammar

        require_llguidance()
        for served in [pool.resolve("base"), *pool.adapters().values()]:
            tool_call_grammar(served.loaded.call_format, [])  # an unsupported format fails at startup
    service = ChatService(pool, settings)
    log_dir = settings.effective_log_dir()
    request_log = RequestLog(log_dir, max_bytes=int(settings.log_max_mb * 2**20)) if log_dir else None
    monitor = DriftMonitor(pool.registry, settings.watch, settings.drift_interval) if settings.watch else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if monitor is not None:
            monitor.start()  # the first check runs now, then every drift_interval minutes
        yield
        if monitor is not None:
            monitor.stop()
        if request_log is not None:
            request_log.close()  # what is queued reaches the disk before the process ends

    app = FastAPI(title="tooltune serve", version="1", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.pool, app.state.request_log, app.state.drift = pool, request_log, monitor
    _error_handlers(app)
    add_feedback_route(app, request_log)
    install(app, max_body_bytes=settings.max_body_bytes, trusted_proxies=settings.trusted_proxies,
            allowed_hosts=default_allowed_hosts(settings.host, settings.allowed_hosts),
            error_body=lambda status, message: _error_body(None, message), on_refusal=_log_refusal)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "models": pool.names,
                "request_log": request_log.stats() if request_log else None,
                "drift": monitor.status() if monitor else None}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [_model_entry(name, pool) for name in _model_ids(pool)]}

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatRequest, request: Request) -> Any:
        started = time.perf_counter()
        service_name = request.headers.get(SERVICE_HEADER)
        # In a worker thread: resolving may load a registry version from disk.
        served, prompt, grammar, limit = await anyio.to_thread.run_sync(service.prepare, body, service_name)
        stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
        choice = body.tool_choice or ("auto" if body.tools else "none")
        response_id = f"chatcmpl-{uuid.uuid4().hex}"
        headers = {WARNING_HEADER: served.warning} if served.warning else {}
        log = _logger(request_log, response_id, body, served, service_name, started)
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            events = _stream(service, served, prompt, grammar, limit, choice, stop, include_usage,
                             body.parallel_tool_calls is not False, response_id, log)
            return StreamingResponse(events, media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **headers})
        generation = await anyio.to_thread.run_sync(service.generate, served, prompt, grammar, limit)
        turn = read_turn(served.loaded.call_format, generation, tool_choice=choice, stop=stop,
                         parallel=body.parallel_tool_calls is not False)
        log(turn)
        return JSONResponse({"id": response_id, "object": "chat.completion", "created": int(time.time()),
                             "model": served.name, "system_fingerprint": None,
                             "choices": [{"index": 0, "message": turn.message(), "logprobs": None,
                                          "finish_reason": turn.finish_reason}],
                             "usage": turn.usage()}, headers=headers)

    return app


def _logger(request_log: RequestLog | None, response_id: str, body: ChatRequest, served: Served, service: str | None,
            started: float) -> Callable[[Turn], None]:
    """What to call with the finished turn: logs it (queued, never blocking) when logging is on."""
    if request_log is None:
        return lambda turn: None

    def log(turn: Turn) -> None:
        try:
            request_log.record(served_entry(
                response_id=response_id, messages=conversation(body), tools=_tools(body), model=served.name,
                requested=body.model, service=service, raw_output=turn.generation.text, calls=turn.calls,
                markup_problem=turn.problem, latency_ms=1000 * (time.perf_counter() - started)))
        except Exception:  # noqa: BLE001 - a logging fault must never fail the answer it logs
            logger.exception("production log: cannot log response %s", response_id)

    return log


# -- streaming ------------------------------------------------------------------------------


class _TextStreamer:
    """A ``transformers`` streamer: decodes the growing output and queues each new piece of text."""

    def __init__(self, tokenizer: Any, out: queue.SimpleQueue[str | None]):
        self.tokenizer, self.out = tokenizer, out
        self.ids: list[int] = []
        self.text = ""
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:  # generate hands over the prompt first
            self._prompt_seen = True
            return
        self.ids.extend(value.reshape(-1).tolist())
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if len(text) > len(self.text) and text.startswith(self.text) and not text.endswith("\ufffd"):
            self.out.put(text[len(self.text):])
            self.text = text

    def end(self) -> None:
        self.out.put(None)


async def _stream(service: ChatService, served: Served, prompt: Prompt, grammar: str | None, limit: int, choice: Any,
                  stop: list[str], include_usage: bool, parallel: bool, chunk_id: str,
                  log: Callable[[Turn], None]) -> AsyncIterator[str]:
    """SSE chunks in OpenAI's shape. Text is streamed as it is generated; call markup is held
    back and sent as ``tool_calls`` deltas once the parser has read the finished turn."""
    fmt = served.loaded.call_format
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": served.name,
                "system_fingerprint": None,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    pieces: queue.SimpleQueue[str | None] = queue.SimpleQueue()
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            result["generation"] = service.generate(served, prompt, grammar, limit, _TextStreamer(served.loaded.tokenizer, pieces))
        except Exception as e:  # noqa: BLE001 - reported to the client as an error event below
            result["error"] = e
            pieces.put(None)

    threading.Thread(target=work, daemon=True, name="tooltune-stream").start()
    yield chunk({"role": "assistant", "content": ""})
    text, sent = "", ""
    while True:
        piece = await asyncio.get_running_loop().run_in_executor(None, pieces.get)
        if piece is None:
            break
        text += piece
        visible = _safe_prefix(text, fmt, choice, stop)
        if len(visible) > len(sent):
            yield chunk({"content": visible[len(sent):]})
            sent = visible
    while "generation" not in result and "error" not in result:
        await asyncio.sleep(0.005)  # the streamer ended just before generate returned
    if "error" in result:
        error = result["error"]
        yield f"data: {json.dumps(_error_body(None, f'{type(error).__name__}: {error}', 'server_error'))}\n\n"
        yield "data: [DONE]\n\n"
        return
    turn = read_turn(fmt, result["generation"], tool_choice=choice, stop=stop, parallel=parallel)
    log(turn)
    if turn.content and turn.content.startswith(sent) and len(turn.content) > len(sent):
        yield chunk({"content": turn.content[len(sent):]})
    for index, call in enumerate(turn.calls):
        yield chunk({"tool_calls": [{"index": index, **openai_call(call)}]})
    yield chunk({}, turn.finish_reason)
    if include_usage:
        body = {"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": served.name,
                "system_fingerprint": None, "choices": [], "usage": turn.usage()}
        yield f"data: {json.dumps(body)}\n\n"
    yield "data: [DONE]\n\n"


def _safe_prefix(text: str, fmt: CallFormat, choice: Any, stop: list[str]) -> str:
    """The part of ``text`` that is certainly prose: before any call markup or stop string."""
    holds = [s for s in stop if s]
    if choice != "none":
        tags = CALL_TAGS.get(fmt.name)
        if tags is None:
            return ""  # formats without an opening tag (pythonic, JSON) are known only at the end
        holds.append(tags[0])
    end = len(text)
    for marker in holds:
        found = text.find(marker)
        if found != -1:
            end = min(end, found)
            continue
        for k in range(min(len(marker) - 1, len(text)), 0, -1):  # a marker may be starting at the end
            if text.endswith(marker[:k]):
                end = min(end, len(text) - k)
                break
    return text[:end]


# -- errors ---------------------------------------------------------------------------------


def _log_refusal(scope: dict[str, Any], status: int, message: str) -> None:
    logger.warning("refused %s %s from %s: %d %s", scope["method"], scope["path"], client_address(scope), status, message)


def _error_body(param: str | None, message: str, kind: str = "invalid_request_error", code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def request_error(_: Request, e: RequestError) -> JSONResponse:
        return JSONResponse(_error_body(e.param, e.message, code=e.code), status_code=e.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, e: RequestValidationError) -> JSONResponse:
        errors = e.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": "invalid"}
        if first.get("type") == "json_invalid":
            return JSONResponse(_error_body(None, f"the request body is not valid JSON: {first.get('ctx', {}).get('error', '')}"),
                                status_code=400)
        param = _param(first.get("loc", ()))
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        message = f"{param or 'body'}: {first.get('msg')}{more}"
        return JSONResponse(_error_body(param, message), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, e: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(_error_body(None, str(e.detail)), status_code=e.status_code)


def _param(loc: tuple[Any, ...] | list[Any]) -> str | None:
    """A pydantic error location as a field path: ("body", "messages", 0, "role") → messages[0].role.
    Union branch tags (``str``, ``list[TextPart]``, ``function-after[...]``) are left out."""
    out = ""
    for part in loc:
        if part == "body" and not out:
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and ("[" in part or part in ("str", "int", "float", "bool", "dict", "list", "none")
                                        or part[:1].isupper()):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or None


# -- helpers --------------------------------------------------------------------------------


def _tools(request: ChatRequest) -> list[Tool]:
    tools = []
    for i, tool in enumerate(request.tools or []):
        try:
            tools.append(Tool.from_dict(tool.model_dump(exclude_none=True), where=f"tools[{i}]"))
        except CatalogError as e:
            raise RequestError(f"tools[{i}].function.parameters", str(e)) from e
    return tools


def _model_ids(pool: ModelPool) -> list[str]:
    ids = list(pool.names)
    if pool.registry is not None:
        for record in pool.registry.list_models():
            if record.live_services:
                for ref in (record.name, record.ref):
                    if ref not in ids:
                        ids.append(ref)
    return ids


def _model_entry(name: str, pool: ModelPool) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "tooltune", "root": pool.settings.model,
            "parent": None if name == "base" else "base"}


def _registry(settings: ServeSettings) -> Any:
    if settings.registry_url is None:
        return None
    from tooltune.registry import Registry

    return Registry(settings.registry_url)
