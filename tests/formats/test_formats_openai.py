import json

from tooltune.formats import ParseKind
from tooltune.formats.openai import from_message, parse, render, to_message
from tooltune.tools.call import ToolCall

# Shape of an assistant message from the OpenAI chat completions API (function-calling guide).
API_MESSAGE = {
    "role": "assistant",
    "content": None,
    "tool_calls": [
        {
            "id": "call_abc123",
            "type": "function",
            "function": {"name": "get_current_weather", "arguments": '{\n"location": "Boston, MA"\n}'},
        }
    ],
}


def test_render_generates_ids_and_keeps_given_ones():
    text = render([ToolCall("a", {"x": 1}), ToolCall("b", {}, id="call_xyz")])
    assert json.loads(text) == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_0", "type": "function", "function": {"name": "a", "arguments": '{"x": 1}'}},
            {"id": "call_xyz", "type": "function", "function": {"name": "b", "arguments": "{}"}},
        ],
    }


def test_to_message_with_content_and_without_calls():
    assert to_message([], content="Hello") == {"role": "assistant", "content": "Hello"}
    assert to_message([ToolCall("f", {})], content="Calling f.")["content"] == "Calling f."


def test_from_api_message_keeps_id():
    result = from_message(API_MESSAGE)
    assert result.kind is ParseKind.CALLS
    assert result.calls == [ToolCall("get_current_weather", {"location": "Boston, MA"})]
    assert result.calls[0].id == "call_abc123"


def test_parse_text_and_bare_tool_calls_list():
    assert parse(json.dumps(API_MESSAGE)).calls[0].id == "call_abc123"
    bare = json.dumps(API_MESSAGE["tool_calls"])
    assert parse(bare).calls == [ToolCall("get_current_weather", {"location": "Boston, MA"})]


def test_message_without_calls_is_no_call_with_content():
    for message in [
        {"role": "assistant", "content": "It is sunny."},
        {"role": "assistant", "content": "It is sunny.", "tool_calls": []},
        {"role": "assistant", "content": [{"type": "text", "text": "It is sunny."}], "tool_calls": None},
    ]:
        result = from_message(message)
        assert result.kind is ParseKind.NO_CALL and result.content == "It is sunny."


def test_prose_is_no_call():
    assert parse("It is sunny in Boston.").kind is ParseKind.NO_CALL
    assert parse('{"weather": "sunny"}').kind is ParseKind.NO_CALL


def test_malformed_messages_name_the_call():
    def call(**function):
        return {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": function}]}

    cases = [
        (call(name="f", arguments="{not json"), "tool_calls[0].function: arguments string is not valid JSON"),
        (call(name="f", arguments="[1]"), "arguments must be a JSON object, got array"),
        (call(arguments="{}"), "tool_calls[0].function: 'name' must be a non-empty string"),
        (call(name="f"), "has no 'arguments' key"),
        ({"tool_calls": [{"type": "code_interpreter"}]}, "type 'code_interpreter' is not supported"),
        ({"tool_calls": [{"id": 7, "function": {"name": "f", "arguments": "{}"}}]}, "id must be a string"),
        ({"tool_calls": {"name": "f"}}, "tool_calls must be a list"),
        ({"tool_calls": ["f"]}, "tool_calls[0]: expected a tool call object"),
    ]
    for message, reason in cases:
        result = from_message(message)
        assert result.kind is ParseKind.MALFORMED, message
        assert reason in result.error, (message, result.error)


def test_from_message_rejects_non_dict():
    assert from_message(["x"]).kind is ParseKind.MALFORMED  # type: ignore[arg-type]


def test_truncated_json_is_malformed():
    result = parse('{"role": "assistant", "tool_calls": [{"function": {"name": "f", "argum')
    assert result.kind is ParseKind.MALFORMED and "not valid JSON" in result.error
