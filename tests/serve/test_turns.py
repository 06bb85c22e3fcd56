"""Reading a generated turn into an OpenAI message, and what streaming may show early (strings only)."""

from __future__ import annotations

import json

import pytest

from tooltune.runtime.generate import Generation
from tooltune.formats.base import get_format
from tooltune.serve.app import _param, _safe_prefix, read_turn
from tooltune.serve.settings import ServeSettings, parse_adapter_options

HERMES = get_format("hermes")
TWO_CALLS = ('<tool_call>\n{"name": "get_orders", "arguments": {"fulfillment_state": "shipped"}}\n</tool_call>\n'
             '<tool_call>\n{"name": "list_payments", "arguments": {"state": "failed", "limit": 5}}\n</tool_call>')


def _gen(text: str, stopped: bool = True) -> Generation:
    return Generation(text=text, prompt_tokens=10, new_tokens=7, latency_ms=1.0, stopped=stopped)


def test_calls_become_openai_tool_calls_with_json_string_arguments():
    turn = read_turn(HERMES, _gen(TWO_CALLS), tool_choice="auto", stop=[])
    message = turn.message()
    assert turn.finish_reason == "tool_calls" and message["content"] is None
    assert [c["function"]["name"] for c in message["tool_calls"]] == ["get_orders", "list_payments"]
    assert json.loads(message["tool_calls"][1]["function"]["arguments"]) == {"state": "failed", "limit": 5}
    assert len({c["id"] for c in message["tool_calls"]}) == 2
    assert turn.usage() == {"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17}
    single = read_turn(HERMES, _gen(TWO_CALLS), tool_choice="auto", stop=[], parallel=False)
    assert [c.name for c in single.calls] == ["get_orders"]


def test_text_malformed_none_stop_and_length():
    assert read_turn(HERMES, _gen("  Which order?  "), tool_choice="auto", stop=[]).content == "Which order?"
    cut = '<tool_call>\n{"name": "get_orders", "argu'
    malformed = read_turn(HERMES, _gen(cut, stopped=False), tool_choice="auto", stop=[])
    assert malformed.content == cut and not malformed.calls and malformed.finish_reason == "length"
    # tool_choice none: call markup is plain text.
    none = read_turn(HERMES, _gen(TWO_CALLS), tool_choice="none", stop=[])
    assert none.content == TWO_CALLS and not none.calls and none.finish_reason == "stop"
    stopped = read_turn(HERMES, _gen("Hello there. Bye", stopped=False), tool_choice="auto", stop=["."])
    assert stopped.content == "Hello there" and stopped.finish_reason == "stop"


@pytest.mark.parametrize("text, shown", [
    ("Sure, ", "Sure, "),
    ("Sure <tool", "Sure "),              # the opening tag may be starting: hold it back
    ("Sure <tool_call>\n{", "Sure "),
    ("a <b> c", "a <b> c"),
])
def test_streaming_holds_back_possible_call_markup(text, shown):
    assert _safe_prefix(text, HERMES, "auto", []) == shown


def test_streaming_formats_without_an_opening_tag_wait_for_the_end():
    assert _safe_prefix("[get_orders(", get_format("pythonic"), "auto", []) == ""
    assert _safe_prefix("[get_orders(", get_format("pythonic"), "none", []) == "[get_orders("
    assert _safe_prefix("one. two", HERMES, "none", ["."]) == "one"


def test_error_locations_become_field_paths():
    assert _param(("body", "messages", 0, "role")) == "messages[0].role"
    assert _param(("body", "messages", 2, "content", "str")) == "messages[2].content"
    assert _param(("body", "tool_choice", "literal['auto','none','required']")) == "tool_choice"
    assert _param(("body", "tool_choice", "NamedToolChoice", "function", "name")) == "tool_choice.function.name"
    assert _param(("body",)) is None


def test_settings_and_adapter_options(tmp_path):
    assert parse_adapter_options(["shop=runs/a", "runs/cal"]) == {"shop": tmp_path.__class__("runs/a"),
                                                                  "cal": tmp_path.__class__("runs/cal")}
    from tooltune.errors import ConfigError

    with pytest.raises(ConfigError, match="given twice"):
        parse_adapter_options(["x=a", "x=b"])
    with pytest.raises(ValueError, match="reserved or invalid"):
        ServeSettings(model="m", adapters={"base": "runs/a"})
    with pytest.raises(ValueError, match="max_new_tokens"):
        ServeSettings(model="m", max_new_tokens=0)


def test_settings_name_the_model_nothing_is_served_by_default():
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as caught:
        ServeSettings(port=8001)
    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [(("model",), "missing")]
