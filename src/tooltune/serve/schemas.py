"""The OpenAI chat-completions request, typed: what ``POST /v1/chat/completions`` accepts.

Unknown fields are refused (a misspelt ``tool_choise`` is a 400 naming it, not silently
ignored); the OpenAI parameters this server does not implement are accepted only at their
defaults (see :func:`check_supported`). Decoding is greedy: ``temperature``, ``top_p``,
``seed`` and the penalties are accepted and have no effect.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tooltune.safeload import loads_json


class RequestError(Exception):
    """A client's mistake found after schema validation: answered 400 with ``param`` named."""

    def __init__(self, param: str | None, message: str, *, status: int = 400, code: str | None = None):
        super().__init__(message)
        self.param, self.message, self.status, self.code = param, message, status, code


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FunctionDef(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None


class ToolDef(_Strict):
    type: Literal["function"]
    function: FunctionDef


class FunctionName(_Strict):
    name: str = Field(min_length=1)


class NamedToolChoice(_Strict):
    type: Literal["function"]
    function: FunctionName


class CallFunction(_Strict):
    name: str = Field(min_length=1)
    arguments: str | dict[str, Any] = Field(description="JSON text (OpenAI) or an object.")


class MessageToolCall(_Strict):
    id: str | None = None
    type: Literal["function"] = "function"
    function: CallFunction


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class Message(_Strict):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[MessageToolCall] | None = None
    tool_call_id: str | None = None
    refusal: str | None = None


class StreamOptions(_Strict):
    include_usage: bool = False


class ChatRequest(_Strict):
    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    tools: list[ToolDef] | None = None
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    n: int = Field(1, ge=1)
    parallel_tool_calls: bool | None = None
    # Accepted for compatibility; decoding is greedy, so these change nothing.
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    # Refused unless at their defaults (check_supported).
    logprobs: bool | None = None
    top_logprobs: int | None = None
    logit_bias: dict[str, float] | None = None
    response_format: dict[str, Any] | None = None


def check_supported(request: ChatRequest) -> None:
    """Refuse what the schema admits but this server does not do, naming the parameter."""
    if request.n != 1:
        raise RequestError("n", f"n={request.n}: this server returns one choice per request (greedy decoding); use n=1.")
    if request.logprobs:
        raise RequestError("logprobs", "logprobs are not supported by tooltune serve; leave logprobs unset.")
    if request.logit_bias:
        raise RequestError("logit_bias", "logit_bias is not supported by tooltune serve; leave it unset.")
    if request.response_format and request.response_format.get("type", "text") != "text":
        raise RequestError("response_format", f"response_format type {request.response_format.get('type')!r} is not "
                                              "supported; only text (tool calls are constrained with --constrained).")
    if request.tool_choice not in (None, "auto", "none") and not request.tools:
        raise RequestError("tool_choice", "tool_choice asks for a tool call but no tools are given; add tools or "
                                          "use tool_choice 'auto' / 'none'.")
    if isinstance(request.tool_choice, NamedToolChoice):
        offered = [t.function.name for t in request.tools or []]
        if request.tool_choice.function.name not in offered:
            raise RequestError("tool_choice.function.name", f"tool_choice names {request.tool_choice.function.name!r}, "
                                                            f"which is not among the tools ({', '.join(offered)}).")
    names = [t.function.name for t in request.tools or []]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise RequestError(f"tools[{i}].function.name", f"tool name {name!r} is given twice; tool names must be unique.")


def conversation(request: ChatRequest) -> list[dict[str, Any]]:
    """The request's messages in tooltune's shape (what ``render_chat`` takes): text content,
    ``developer`` as ``system``, call arguments as objects. Bad arguments JSON is a 400."""
    out: list[dict[str, Any]] = []
    for i, message in enumerate(request.messages):
        content = message.content
        if isinstance(content, list):
            content = "".join(part.text for part in content)
        role = "system" if message.role == "developer" else message.role
        if role in ("system", "user", "tool") and content is None:
            raise RequestError(f"messages[{i}].content", f"a {message.role} message needs content.")
        item: dict[str, Any] = {"role": role, "content": content or ""}
        if role == "tool":
            item["tool_call_id"] = message.tool_call_id
            if message.name:
                item["name"] = message.name
        if message.tool_calls:
            if role != "assistant":
                raise RequestError(f"messages[{i}].tool_calls", "only assistant messages carry tool_calls.")
            item["tool_calls"] = [_call(call, f"messages[{i}].tool_calls[{j}]") for j, call in enumerate(message.tool_calls)]
        out.append(item)
    return out


def _call(call: MessageToolCall, where: str) -> dict[str, Any]:
    arguments = call.function.arguments
    if isinstance(arguments, str):
        try:
            arguments = loads_json(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as e:
            raise RequestError(f"{where}.function.arguments", f"arguments are not valid JSON: {e.msg} at position {e.pos}.") from e
        if not isinstance(arguments, dict):
            raise RequestError(f"{where}.function.arguments", "arguments must encode a JSON object.")
    return {"type": "function", "function": {"name": call.function.name, "arguments": arguments},
            **({"id": call.id} if call.id else {})}
