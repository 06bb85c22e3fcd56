"""Turn a conversation plus the offered tools into model input text: the one rendering path.

Training, evaluation and serving all call :func:`render_chat`, so the bytes a model is trained on
are the bytes it is evaluated and served with, and :func:`call_format_for` names the one parser
that reads its output everywhere.

Messages use the OpenAI/Hugging Face shape; an assistant turn that calls tools carries
``tool_calls=[{"type": "function", "function": {"name": ..., "arguments": {...}}}]`` with
``arguments`` as a dict. Templates disagree on that last point: most apply ``| tojson`` to a dict,
some print a pre-encoded JSON string. Feeding the wrong one silently trains the wrong bytes
(``{'a': 1}`` or ``"{\\"a\\": 1}"``), so the style each template wants is detected once, by
rendering a probe call, and the arguments are converted before rendering.

Tokenizers whose template does not handle tools (or that have none) get :data:`BUILTIN_TEMPLATE`,
ChatML with the tool listing in the system turn and calls written by a tooltune format's own
``render`` (Hermes ``<tool_call>`` by default), so parse(render) holds by construction. It marks
assistant turns with ``{% generation %}`` so assistant-only loss masks work.
"""

from __future__ import annotations

import copy
import json
import os
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from tooltune.errors import TemplateError
from tooltune.formats.base import CallFormat, format_names, get_format
from tooltune.tools.call import ToolCall
from tooltune.tools.catalog import Tool, ToolCatalog
from tooltune.tools.schema_rules import inline_refs

ArgumentsStyle = Literal["dict", "json"]

BUILTIN_MARKER = "{#- tooltune built-in template v1: calls in hermes format -#}"
BUILTIN_TEMPLATE = (
    # Written with explicit string outputs because transformers renders with trim_blocks, which
    # would silently eat newlines after block tags and shift the trained bytes. Self-contained
    # (no extra variables) so a run dir's tokenizer works unchanged in other servers (vLLM).
    BUILTIN_MARKER +
    "{%- set ns = namespace(system='') -%}"
    "{%- if messages and messages[0].role == 'system' -%}{%- set ns.system = messages[0].content -%}{%- endif -%}"
    "{%- if tools -%}"
    "{{- '<|im_start|>system\\n' -}}"
    "{%- if ns.system -%}{{- ns.system + '\\n\\n' -}}{%- endif -%}"
    "{{- 'You can call these tools:\\n<tools>\\n' -}}"
    "{%- for tool in tools -%}{{- tool | tojson -}}{{- '\\n' -}}{%- endfor -%}"
    "{{- '</tools>\\n\\nTo call tools, reply with the call and nothing else, in this form (one entry per call):\\n' -}}"
    "{{- '<tool_call>\\n{\"name\": \"tool_name\", \"arguments\": {\"parameter\": \"value\"}}\\n</tool_call>' -}}"
    "{{- '\\nIf no tool fits the request, answer in plain text. If a required detail is missing, ask for it.<|im_end|>\\n' -}}"
    "{%- elif ns.system -%}"
    "{{- '<|im_start|>system\\n' + ns.system + '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- for message in messages -%}"
    "{%- if message.role == 'user' -%}"
    "{{- '<|im_start|>user\\n' + message.content + '<|im_end|>\\n' -}}"
    "{%- elif message.role == 'assistant' -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- generation -%}"
    "{{- message.content or '' -}}"
    # tooltune itself passes calls already rendered in content (by hermes.render); other servers
    # pass tool_calls, written here byte-for-byte as hermes.render writes them.
    "{%- for tc in message.tool_calls or [] -%}"
    "{%- set fn = tc.function if tc.function is defined else tc -%}"
    "{%- if loop.first and message.content -%}{{- '\\n' -}}{%- elif not loop.first -%}{{- '\\n' -}}{%- endif -%}"
    "{{- '<tool_call>\\n{\"name\": ' + (fn.name | tojson) + ', \"arguments\": ' -}}"
    "{%- if fn.arguments is string -%}{{- fn.arguments -}}{%- else -%}{{- fn.arguments | tojson -}}{%- endif -%}"
    "{{- '}\\n</tool_call>' -}}"
    "{%- endfor -%}"
    "{{- '<|im_end|>' -}}"
    "{%- endgeneration -%}"
    "{{- '\\n' -}}"
    "{%- elif message.role == 'tool' -%}"
    "{{- '<|im_start|>user\\n<tool_response>\\n' + message.content + '\\n</tool_response><|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

PTYPE_MACRO = (
    # A JSON-Schema property as a compact type: int, float, bool, str, date, list[...], dict, or
    # its enum values joined by |. Shared with the tiny test base's template (tests/fixtures/tiny_base/chat.py).
    "{%- macro ptype(p) -%}"
    "{%- set branches = (p.anyOf or p.oneOf or []) | rejectattr('type', 'equalto', 'null') | list -%}"
    "{%- set q = branches[0] if branches else p -%}"
    "{%- if q.enum is defined -%}{{- q.enum | reject('none') | map('string') | join('|') -}}"
    "{%- elif q.type == 'integer' -%}{{- 'int' -}}"
    "{%- elif q.type == 'number' -%}{{- 'float' -}}"
    "{%- elif q.type == 'boolean' -%}{{- 'bool' -}}"
    "{%- elif q.type == 'array' -%}{{- 'list[' -}}{{- ptype(q['items']) if q['items'] is mapping else 'any' -}}{{- ']' -}}"
    "{%- elif q.type == 'object' -%}{{- 'dict' -}}"
    "{%- elif q.format in ('date', 'date-time', 'email') -%}{{- q.format | replace('-', '') -}}"
    "{%- else -%}{{- 'str' -}}"
    "{%- endif -%}"
    "{%- endmacro -%}"
)

COMPACT_MARKER = "{#- tooltune built-in template v1 compact: signatures, calls in hermes format -#}"
COMPACT_TEMPLATE = (
    # BUILTIN_TEMPLATE with the tool listing as one signature a tool plus one short line per
    # described parameter, instead of JSON Schema: about 3x fewer prompt tokens on the shop tools,
    # and the prompt is most of what a CPU spends its training and evaluation time reading.
    # Chosen per run (TrainConfig.tool_listing) and saved with the run's tokenizer, so evaluation
    # and serving of that run render the same bytes.
    COMPACT_MARKER
    + PTYPE_MACRO +
    "{%- macro first_sentence(text) -%}"
    # "e.g. 'cus_0001'" does not end a sentence: protect it while splitting.
    "{{- (text or '').strip().split('\\n')[0].replace('e.g. ', 'e.g.\u00a7').replace('i.e. ', 'i.e.\u00a7')"
    ".split('. ')[0].replace('\u00a7', ' ').strip().rstrip('.') -}}"
    "{%- endmacro -%}"
    "{%- set ns = namespace(system='') -%}"
    "{%- if messages and messages[0].role == 'system' -%}{%- set ns.system = messages[0].content -%}{%- endif -%}"
    "{%- if tools -%}"
    "{{- '<|im_start|>system\\n' -}}"
    "{%- if ns.system -%}{{- ns.system + '\\n\\n' -}}{%- endif -%}"
    "{{- 'Tools (? marks an optional parameter):\\n' -}}"
    "{%- for tool in tools -%}"
    "{%- set fn = tool.function if tool.function is defined else tool -%}"
    "{%- set params = fn.parameters if fn.parameters is mapping else {} -%}"
    "{%- set props = params.properties if params.properties is mapping else {} -%}"
    "{%- set required = params.required if params.required is defined and params.required else [] -%}"
    "{{- fn.name + '(' -}}"
    "{%- for name, p in props.items() -%}"
    "{{- name -}}{%- if name not in required -%}{{- '?' -}}{%- endif -%}{{- ': ' -}}{{- ptype(p) -}}"
    "{%- if p.default is defined and p.default is not none -%}{{- ' = ' + (p.default | tojson) -}}{%- endif -%}"
    "{%- if not loop.last -%}{{- ', ' -}}{%- endif -%}"
    "{%- endfor -%}"
    "{{- ') — ' + first_sentence(fn.description) + '\\n' -}}"
    "{%- for name, p in props.items() -%}"
    "{%- set line = first_sentence(p.description) -%}"
    "{%- if line -%}{{- '  ' + name + ': ' + line + '\\n' -}}{%- endif -%}"
    "{%- endfor -%}"
    "{%- endfor -%}"
    "{{- '\\nTo call tools, reply with the call and nothing else, in this form (one entry per call):\\n' -}}"
    "{{- '<tool_call>\\n{\"name\": \"tool_name\", \"arguments\": {\"parameter\": \"value\"}}\\n</tool_call>' -}}"
    "{{- '\\nIf no tool fits the request, answer in plain text. If a required detail is missing, ask for it.<|im_end|>\\n' -}}"
    "{%- elif ns.system -%}"
    "{{- '<|im_start|>system\\n' + ns.system + '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    # The conversation part is BUILTIN_TEMPLATE's, byte for byte.
    + BUILTIN_TEMPLATE[BUILTIN_TEMPLATE.index("{%- for message in messages -%}"):]
)
TOOL_LISTINGS = {"schema": BUILTIN_TEMPLATE, "compact": COMPACT_TEMPLATE}
"""Built-in templates by ``TrainConfig.tool_listing``: JSON Schema per tool, or compact signatures."""

BUILTIN_CALL_FORMAT = "hermes"
_PROBE_CALL = ToolCall("probe_tool", {"probe_arg": "probe value"})
_PROBE_USER = "tooltune-probe-user-turn"
_PREFIX_PROBES = ("A", "B")  # two user turns that differ from their first character


@dataclass(frozen=True)
class ChatSetup:
    """How one tokenizer renders tool conversations: template, argument style, output format."""

    template: str
    builtin: bool
    arguments_style: ArgumentsStyle
    call_format: CallFormat


_SETUPS: weakref.WeakKeyDictionary[Any, ChatSetup] = weakref.WeakKeyDictionary()


def render_chat(
    tokenizer: Any,
    messages: list[dict[str, Any]],
    tools: ToolCatalog | list[Tool] | list[dict[str, Any]] | None = None,
    *,
    add_generation_prompt: bool = False,
) -> str:
    """Render ``messages`` with ``tools`` offered, as text the model reads (and is trained on).

    This is the single rendering function of tooltune: training, evaluation and serving all call
    it, so they see the same bytes. Tokenize its output with ``add_special_tokens=False``: the
    template already wrote any BOS token.
    """
    setup = chat_setup(tokenizer)
    return _apply(tokenizer, setup, messages, tools, add_generation_prompt=add_generation_prompt)


def shared_prefix(
    tokenizer: Any,
    messages: list[dict[str, Any]],
    tools: ToolCatalog | list[Tool] | list[dict[str, Any]] | None = None,
    *,
    text: str | None = None,
    render: Callable[[list[dict[str, Any]]], str] | None = None,
) -> str | None:
    """The start of a rendered conversation that every conversation with the same system text and
    tools shares: everything before the first user turn (the system turn, the tool listing, a
    prompt-only model's few-shot turns, and the user turn's opener when that is an added token).

    This is the one definition of "the prefix", for prefix-shared training rows
    (:mod:`tooltune.train.prefix_sharing`) and prefix-cached generation (:mod:`tooltune.runtime.prefix`).
    ``text`` is the conversation as already rendered (whole, or a prompt); ``render`` renders
    messages as the caller does (default :func:`render_chat` with ``tools``). Found without knowing
    the template: chat templates cannot render a conversation without a user turn, so the messages
    before the first user turn are rendered twice, followed by two different user turns, and their
    common start is cut back to just after its last added token: text never merges with an added
    token during tokenization, so the cut is a token boundary of the whole conversation too. None
    when there is no user turn, the template cannot render it, or ``text`` does not start with it.
    Callers cutting token ids still check that the prefix's ids start the conversation's ids (a
    template without added tokens keeps the whole common start, and a tokenizer may merge there).
    """
    render = render or (lambda msgs: render_chat(tokenizer, msgs, tools))
    first_user = next((i for i, m in enumerate(messages) if m.get("role") == "user"), None)
    if first_user is None:
        return None
    head = list(messages[:first_user])
    try:
        a, b = (render([*head, {"role": "user", "content": probe}]) for probe in _PREFIX_PROBES)
    except TemplateError:
        return None
    common = os.path.commonprefix([a, b])
    prefix = common[:_after_last_added_token(tokenizer, common)]
    if text is None:
        text = render(messages)
    return prefix if prefix and text.startswith(prefix) else None


def _after_last_added_token(tokenizer: Any, text: str) -> int:
    """Offset in ``text`` just after the last added (special) token in it; ``len(text)`` if none."""
    if not text or not getattr(tokenizer, "is_fast", False):  # offsets need a fast tokenizer
        return len(text)
    added = set(tokenizer.get_added_vocab().values())
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ends = [end for token, (_, end) in zip(encoded["input_ids"], encoded["offset_mapping"], strict=True) if token in added]
    return ends[-1] if ends else len(text)


def call_format_for(tokenizer: Any) -> CallFormat:
    """The tool-call format this tokenizer's template writes, hence the parser for its output."""
    return chat_setup(tokenizer).call_format


def chat_setup(tokenizer: Any) -> ChatSetup:
    """Detect (once per tokenizer) the template to use, its argument style and its call format."""
    try:
        return _SETUPS[tokenizer]
    except (KeyError, TypeError):
        pass
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):  # some tokenizers keep several named templates
        template = template.get("tool_use") or template.get("default")
    if template and template.startswith(COMPACT_MARKER):
        setup = ChatSetup(template, True, "dict", get_format(BUILTIN_CALL_FORMAT))
    elif not template or "tools" not in template or template.startswith(BUILTIN_MARKER):
        setup = ChatSetup(BUILTIN_TEMPLATE, True, "dict", get_format(BUILTIN_CALL_FORMAT))
    else:
        style, fmt = _probe_template(tokenizer, template)
        setup = ChatSetup(template, False, style, fmt)
    try:
        _SETUPS[tokenizer] = setup
    except TypeError:  # not weak-referenceable: detect again next time
        pass
    return setup


def use_tool_listing(tokenizer: Any, listing: str) -> bool:
    """Make a tokenizer that falls back to tooltune's built-in template list tools as ``listing``
    (a :data:`TOOL_LISTINGS` key) from now on. Tokenizers whose own template renders tools keep it;
    returns whether the template was changed."""
    if listing not in TOOL_LISTINGS:
        raise TemplateError(f"tool_listing: {listing!r} is not one of {', '.join(TOOL_LISTINGS)}.")
    setup = chat_setup(tokenizer)
    if not setup.builtin or setup.template == TOOL_LISTINGS[listing]:
        return False
    tokenizer.chat_template = TOOL_LISTINGS[listing]
    _SETUPS.pop(tokenizer, None)  # detected again from the new template
    return True


def assistant_message(calls: list[ToolCall] | None = None, content: str = "") -> dict[str, Any]:
    """An assistant turn in tooltune's message shape (arguments as dicts)."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = [
            {"type": "function", "function": {"name": c.name, "arguments": c.arguments}, **({"id": c.id} if c.id else {})}
            for c in calls
        ]
    return message


def tool_schemas(tools: ToolCatalog | list[Tool] | list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Tools as the ``tools=`` list of JSON-schema dicts that chat templates expect."""
    if tools is None:
        return None
    items = tools.tools if isinstance(tools, ToolCatalog) else tools
    return [t.to_openai() if isinstance(t, Tool) else t for t in items] or None


def _apply(tokenizer, setup: ChatSetup, messages, tools, *, add_generation_prompt: bool) -> str:
    prepared = [_prepare_message(m, setup) for m in messages]
    listed = tool_schemas(tools)
    if listed and PTYPE_MACRO in setup.template:
        # Signature listings type one property at a time: '{"$ref": "#/$defs/Unit"}' would read as str.
        listed = [_inlined(t) for t in listed]
    try:
        return tokenizer.apply_chat_template(
            prepared,
            tools=listed,
            chat_template=setup.template,
            add_generation_prompt=add_generation_prompt,
            tokenize=False,
        )
    except Exception as e:  # jinja raises its own types; name what we were rendering
        raise TemplateError(f"chat template failed to render {len(messages)} messages: {type(e).__name__}: {e}") from e


def _inlined(tool: dict[str, Any]) -> dict[str, Any]:
    fn = tool.get("function", tool)
    params = fn.get("parameters")
    if not isinstance(params, dict) or "$ref" not in json.dumps(params):
        return tool
    fn = {**fn, "parameters": inline_refs(params)}
    return {**tool, "function": fn} if "function" in tool else fn


def _prepare_message(message: dict[str, Any], setup: ChatSetup) -> dict[str, Any]:
    """Copy a message into the form ``setup``'s template wants (never mutate the caller's)."""
    if message.get("role") == "tool" and not isinstance(message.get("content"), str):
        # Structured tool results are shown to the model as JSON text.
        return {**message, "content": json.dumps(message.get("content"), ensure_ascii=False)}
    if message.get("role") != "assistant" or not message.get("tool_calls"):
        return message
    message = copy.deepcopy(message)
    calls = [tool_call_from_message(tc) for tc in message["tool_calls"]]
    if setup.builtin:
        # The format's own render writes the calls: the template only prints the text.
        text = setup.call_format.render(calls)
        content = message.get("content") or ""
        message["content"] = f"{content}\n{text}" if content else text
        del message["tool_calls"]
        return message
    for tc, call in zip(message["tool_calls"], calls, strict=True):
        args = call.arguments if setup.arguments_style == "dict" else json.dumps(call.arguments, ensure_ascii=False)
        tc.setdefault("type", "function")
        tc["function"] = {"name": call.name, "arguments": args}
    return message


def tool_call_from_message(tool_call: dict[str, Any]) -> ToolCall:
    """One ``tool_calls`` entry (OpenAI or tooltune shape; arguments as dict or JSON string) as a ToolCall."""
    fn = tool_call.get("function", tool_call)
    args = fn.get("arguments", {})
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError as e:
            raise TemplateError(f"tool call {fn.get('name')!r}: arguments string is not JSON ({e.msg}).") from e
    return ToolCall(fn.get("name", ""), args, tool_call.get("id"))


def _probe_template(tokenizer: Any, template: str) -> tuple[ArgumentsStyle, CallFormat]:
    """Render a probe call with dict and with JSON-string arguments; keep the style and format
    under which some registered parser reads the probe call back exactly."""
    probe_tools = [{"type": "function", "function": {
        "name": _PROBE_CALL.name, "description": "probe",
        "parameters": {"type": "object", "properties": {"probe_arg": {"type": "string"}}},
    }}]
    tried = []
    for style in ("dict", "json"):
        args: Any = _PROBE_CALL.arguments if style == "dict" else json.dumps(_PROBE_CALL.arguments)
        messages = [
            {"role": "user", "content": _PROBE_USER},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "call_0", "type": "function", "function": {"name": _PROBE_CALL.name, "arguments": args}}]},
        ]
        try:
            text = tokenizer.apply_chat_template(messages, tools=probe_tools, chat_template=template, tokenize=False)
        except Exception as e:  # noqa: BLE001 - a template may reject one style; try the other
            tried.append(f"{style} arguments: template raised {type(e).__name__}: {e}")
            continue
        turn = text[text.find(_PROBE_USER) + len(_PROBE_USER):]  # the assistant turn only
        for name in format_names():
            result = get_format(name).parse(_strip_markup(turn, tokenizer))
            if result.has_calls and result.calls == [_PROBE_CALL]:
                return style, get_format(name)
        tried.append(f"{style} arguments: no registered format parses the rendered call")
    raise TemplateError(
        "the tokenizer's chat template renders tool calls in a form no tooltune format reads "
        f"({'; '.join(tried)}). Register a format for it in tooltune.formats, or remove the "
        "tokenizer's chat_template to use tooltune's built-in template."
    )


def _strip_markup(text: str, tokenizer: Any) -> str:
    """Drop special tokens (turn markers) so format parsers see only the assistant's text."""
    for token in getattr(tokenizer, "all_special_tokens", []) or []:
        if token:
            text = text.replace(token, "")
    return text.strip()
