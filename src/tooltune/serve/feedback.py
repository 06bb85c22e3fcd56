"""``POST /v1/feedback``: a client says how a response went, and optionally what it should have been.

The body names the response (``response_id``: the ``id`` of the chat completion), its
``outcome`` (``success``, ``failure``, ``error``), optionally a 1-5 ``satisfaction``, the tool
results of its calls (``tooltune chat`` sends them after running the calls on the live server)
and the call or calls that would have been right. The logged turn is written again with the
new outcome (the data build keeps the last line of an id); a correction becomes a
:class:`~tooltune.data.feedback.Correction` line in ``DIR/corrections``, with the logged call as
the wrong one, which the next data build turns into a high-quality example.

A malformed body is a 400 naming the field; an id this server never logged is a 404.
"""

from __future__ import annotations

from typing import Any, Literal

import anyio
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tooltune.data.feedback import CallSpec, Correction, InteractionLog, ToolResult
from tooltune.serve.requestlog import RequestLog
from tooltune.serve.schemas import RequestError


class FeedbackRequest(BaseModel):
    """The body of ``POST /v1/feedback``."""

    model_config = ConfigDict(extra="forbid")

    response_id: str = Field(min_length=1, max_length=256, description="The chat completion's id (chatcmpl-...).")
    outcome: Literal["success", "failure", "error"] = Field(description="How the turn went.")
    satisfaction: int | None = Field(None, ge=1, le=5, description="The user's rating, 1-5.")
    tool_results: list[ToolResult] | None = Field(None, max_length=64, description="The result of each call, in order.")
    corrected_call: CallSpec | None = Field(None, description="The one call that would have been right.")
    corrected_calls: list[CallSpec] | None = Field(None, min_length=1, max_length=16,
                                                   description="The calls that would have been right, made at once.")
    comment: str | None = Field(None, max_length=4000, description="Why; kept as the correction's explanation.")
    author: str | None = Field(None, max_length=200, description="Who corrected it.")

    @model_validator(mode="after")
    def _one_correction(self) -> FeedbackRequest:
        if self.corrected_call is not None and self.corrected_calls is not None:
            raise ValueError("give corrected_call or corrected_calls, not both")
        return self


def add_feedback_route(app: FastAPI, log: RequestLog | None) -> None:
    @app.post("/v1/feedback")
    async def feedback(body: FeedbackRequest) -> dict[str, Any]:
        if log is None:
            raise RequestError(None, "this server keeps no production log, so there is nothing to attach feedback to; "
                                     "start it with `tooltune serve --log-dir DIR`.", status=404, code="feedback_unavailable")
        entry = await anyio.to_thread.run_sync(log.find, body.response_id)
        if entry is None:
            raise RequestError("response_id", f"no response {body.response_id!r} in this server's log ({log.directory}); "
                                              "send the id of a chat completion this server answered.",
                               status=404, code="response_not_found")
        correction = _correction(body, entry)
        log.record(_updated(body, entry))
        if correction is not None:
            log.correct(correction)
        return {"object": "feedback", "response_id": body.response_id, "outcome": body.outcome,
                "correction": correction is not None}


def _updated(body: FeedbackRequest, entry: InteractionLog) -> InteractionLog:
    update: dict[str, Any] = {"outcome": body.outcome}
    if body.satisfaction is not None:
        update["satisfaction"] = body.satisfaction
    if body.tool_results is not None:
        update["tool_results"] = body.tool_results
    if body.comment is not None:
        update["comment"] = body.comment
    return entry.model_copy(update=update)


def _correction(body: FeedbackRequest, entry: InteractionLog) -> Correction | None:
    right = [body.corrected_call] if body.corrected_call is not None else body.corrected_calls
    if not right:
        return None
    field = "corrected_call" if body.corrected_call is not None else "corrected_calls"
    offered = [t if isinstance(t, str) else str((t.get("function") or t).get("name")) for t in entry.tools]
    for i, call in enumerate(right):
        if offered and call.name not in offered:
            where = field if body.corrected_call is not None else f"{field}[{i}]"
            raise RequestError(f"{where}.name", f"{call.name!r} was not among the tools offered in that request "
                                                f"({', '.join(offered)}); correct it with one of them.")
    wrong = next((c for c in entry.calls if isinstance(c.arguments, dict)), None)
    try:
        return Correction(
            log_id=entry.id, messages=entry.messages, tools=entry.tools,
            wrong_call=CallSpec(name=wrong.name, arguments=wrong.arguments) if wrong is not None else None,  # type: ignore[arg-type]
            **({"right_call": right[0]} if field == "corrected_call" else {"right_calls": right}),
            explanation=body.comment, author=body.author)
    except ValidationError as e:
        first = e.errors()[0]
        raise RequestError(field, f"the logged request cannot be corrected: {first['msg'].removeprefix('Value error, ')}") from e
