import pytest

from tooltune.errors import FormatError
from tooltune.formats import ParseKind
from tooltune.formats.json_format import parse, render
from tooltune.tools.call import ToolCall


def test_single_call_renders_as_object():
    assert render([ToolCall("get_weather", {"city": "Paris"})]) == (
        '{"tool_call": {"name": "get_weather", "parameters": {"city": "Paris"}}}'
    )


def test_several_calls_render_as_list():
    text = render([ToolCall("a", {}), ToolCall("b", {"x": 1})])
    assert text == '[{"tool_call": {"name": "a", "parameters": {}}}, {"tool_call": {"name": "b", "parameters": {"x": 1}}}]'
    assert parse(text).calls == [ToolCall("a", {}), ToolCall("b", {"x": 1})]


def test_tool_calls_object_with_wrapped_or_bare_items():
    text = '{"tool_calls": [{"tool_call": {"name": "a", "parameters": {}}}, {"name": "b", "arguments": {"y": 2}}]}'
    assert parse(text).calls == [ToolCall("a", {}), ToolCall("b", {"y": 2})]


def test_whitespace_and_fenced_block():
    fenced = '\n```json\n{"tool_call": {"name": "f", "parameters": {"n": 1.0}}}\n```\n'
    result = parse(fenced)
    assert result.kind is ParseKind.CALLS and result.calls == [ToolCall("f", {"n": 1.0})]
    assert type(result.calls[0].arguments["n"]) is float


def test_prose_and_unrelated_json_are_no_call():
    for text in ["I don't need a tool for that.", '{"answer": 42}', "[1, 2]", "[]", "42", '"tool"']:
        result = parse(text)
        assert result.kind is ParseKind.NO_CALL, text
        assert result.content == text


def test_truncated_call_json_is_malformed():
    result = parse('{"tool_call": {"name": "f", "param')
    assert result.kind is ParseKind.MALFORMED and "is not valid JSON" in result.error


def test_wrong_shapes_are_malformed():
    cases = {
        '{"name": "f", "parameters": {}}': "bare call object",
        '{"tool_call": {"name": "f", "parameters": [1]}}': "top-level object.tool_call: arguments must be a JSON object",
        '{"tool_call": {"parameters": {}}}': "'name' must be a non-empty string",
        '{"tool_call": "f"}': "expected a JSON object with 'name', got string",
        '{"tool_calls": {"name": "f"}}': '"tool_calls" must be a JSON array',
        '[{"tool_call": {"name": "f", "parameters": {}}}, 3]': "item 1: expected a JSON object",
        '{"tool_call": {"name": "f", "parameters": {"x": Infinity}}}': "Infinity is not valid JSON",
    }
    for text, reason in cases.items():
        result = parse(text)
        assert result.kind is ParseKind.MALFORMED, text
        assert reason in result.error, (text, result.error)


def test_render_rejects_non_json_arguments():
    with pytest.raises(FormatError, match="json: call 0 \\(f\\): arguments are not JSON-serializable"):
        render([ToolCall("f", {"x": float("nan")})])
