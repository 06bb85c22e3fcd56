"""ChatML text with Hermes tool calls: a ``text`` field per conversation, as Qwen2.5 renders it.

    <|im_start|>system
    # Tools
    ...
    <tools>
    {"type": "function", "function": {"name": "get_weather", ...}}
    </tools>
    ...<|im_end|>
    <|im_start|>user
    Weather in Paris?<|im_end|>
    <|im_start|>assistant
    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call><|im_end|>

The tools are listed in the system turn between ``<tools>`` tags, one JSON definition per line
(a JSON list is accepted on import); assistant turns are read and written by the ``hermes``
tool-call format; tool results are user turns of ``<tool_response>`` blocks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tooltune.data.examples import Example, Quality
from tooltune.data.io._records import (
    ExportResult,
    ImportOptions,
    RecordContext,
    RecordError,
    Unexportable,
    build_example,
    calls_of,
    conversation,
    export_records,
    import_records,
    parse_calls_text,
)
from tooltune.data.quarantine import QuarantineRecord
from tooltune.formats import get_format
from tooltune.tools.catalog import Tool, ToolCatalog

NAME = "chatml"
CALL_FORMAT = "hermes"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
TOOLS_HEADER = "# Tools"
# Qwen2.5's tool preamble, word for word, so exported text matches what its template renders.
TOOLS_PREAMBLE = (
    TOOLS_HEADER + "\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{tools}\n</tools>\n\n"
    "For each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{{"name": <function-name>, "arguments": <args-json-object>}}\n</tool_call>'
)
_TURN = re.compile(re.escape(IM_START) + r"(\w+)\n(.*?)" + re.escape(IM_END), re.DOTALL)
# The listing's opening tag; the preamble's "within <tools></tools> XML tags" is not one.
_TOOLS = re.compile(r"<tools>(?!</tools>)(.*?)</tools>", re.DOTALL)
_TOOL_RESPONSE = re.compile(r"<tool_response>\n?(.*?)\n?</tool_response>", re.DOTALL)


def read(
    path: str | Path, *, quality: Quality | str = Quality.MEDIUM, dataset: str | None = None
) -> Iterator[Example | QuarantineRecord]:
    """Examples from ``{"text": ...}`` lines of ChatML; bad lines come out as quarantine records."""
    return import_records(path, NAME, _example, ImportOptions.of(quality, dataset))


def _example(record: Any, ctx: RecordContext) -> Example:
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise RecordError('expected an object with a "text" field of ChatML')
    turns = _TURN.findall(record["text"])
    if not turns:
        raise RecordError(f"text: no {IM_START}role ... {IM_END} turns")
    messages: list[dict[str, Any]] = []
    tools: list[Any] = []
    for i, (role, body) in enumerate(turns):
        if role == "system" and i == 0:
            system, tools = _system_and_tools(body)
            messages += [{"role": "system", "content": system}] if system else []
        elif role == "assistant":
            messages.append(parse_calls_text(body, CALL_FORMAT, f"turn {i} (assistant)"))
        elif role == "tool" or (role == "user" and body.lstrip().startswith("<tool_response>")):
            results = _TOOL_RESPONSE.findall(body) or [body.strip()]
            messages += [{"role": "tool", "content": r} for r in results]
        else:
            messages.append({"role": role, "content": body})
    return build_example(messages, tools, ctx)


def _system_and_tools(body: str) -> tuple[str, list[Any]]:
    """The system prompt and tool definitions of a system turn. With the Qwen ``# Tools``
    layout the prompt is the text before it; any other layout is kept whole as the prompt."""
    listing = _TOOLS.search(body)
    if listing is None:
        return body, []
    tools = _decode_listing(listing.group(1))
    header = body.find(TOOLS_HEADER + "\n")
    return (body[:header].strip() if header != -1 else body), tools


def _decode_listing(text: str) -> list[Any]:
    decoder = json.JSONDecoder()
    tools: list[Any] = []
    pos = 0
    while (pos := _skip_space(text, pos)) < len(text):
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise RecordError(f"system: the <tools> listing is not JSON ({e.msg}): {text[pos:pos + 40]!r}") from None
        tools += value if isinstance(value, list) else [value]
    return tools


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def write(examples: Iterable[Example], path: str | Path, catalog: ToolCatalog | None = None) -> ExportResult:
    """One ``{"text"}`` line of ChatML per example; tool schemas from ``inline_tools`` or ``catalog``."""
    return export_records(examples, path, lambda example: {"text": render(*conversation(example, catalog))})


def render(messages: list[dict[str, Any]], tools: list[Tool]) -> str:
    """ChatML text of a conversation, tools listed the way Qwen2.5's template lists them."""
    system = ""
    if messages and messages[0].get("role") == "system":
        system, messages = messages[0].get("content") or "", messages[1:]
    if tools:
        listing = "\n".join(json.dumps(t.to_openai(), ensure_ascii=False) for t in tools)
        system = (system + "\n\n" if system else "") + TOOLS_PREAMBLE.format(tools=listing)
    turns = [("system", system)] if system else []
    for i, message in enumerate(messages):
        role, body = _turn(message, i)
        if role == "tool" and turns and turns[-1][0] == "tool":
            turns[-1] = ("tool", turns[-1][1] + "\n" + body)  # parallel results share one turn, as in Qwen2.5
        else:
            turns.append((role, body))
    return "".join(f"{IM_START}{'user' if role == 'tool' else role}\n{body}{IM_END}\n" for role, body in turns)


def _turn(message: dict[str, Any], index: int) -> tuple[str, str]:
    role = message.get("role")
    content = message.get("content") or ""
    if not isinstance(content, str):
        content = json.dumps(content, ensure_ascii=False)
    if role == "tool":
        return "tool", f"<tool_response>\n{content}\n</tool_response>"
    if role not in ("user", "assistant"):
        raise Unexportable(f"messages[{index}]: role {role!r} cannot be written (only a leading system message is kept).")
    calls = calls_of(message)
    if calls:
        rendered = get_format(CALL_FORMAT).render(calls)
        content = f"{content}\n{rendered}" if content else rendered
    return role, content
