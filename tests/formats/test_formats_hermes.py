from tooltune.formats import ParseKind, get_format
from tooltune.formats.hermes import parse, render
from tooltune.tools.call import ToolCall

# Qwen2.5-7B-Instruct answering "What's the temperature in San Francisco now? How about
# tomorrow?" (Qwen function-calling docs): two parallel blocks, no prose.
QWEN25_PARALLEL = """<tool_call>
{"name": "get_current_temperature", "arguments": {"location": "San Francisco, CA, USA"}}
</tool_call>
<tool_call>
{"name": "get_temperature_date", "arguments": {"location": "San Francisco, CA, USA", "date": "2024-10-01"}}
</tool_call>"""


def test_qwen25_parallel_output():
    result = parse(QWEN25_PARALLEL)
    assert result.kind is ParseKind.CALLS
    assert result.calls == [
        ToolCall("get_current_temperature", {"location": "San Francisco, CA, USA"}),
        ToolCall("get_temperature_date", {"location": "San Francisco, CA, USA", "date": "2024-10-01"}),
    ]
    assert result.content == ""


def test_render_matches_qwen_template_text():
    call = ToolCall("get_current_temperature", {"location": "San Francisco, CA, USA"})
    assert render([call]) == QWEN25_PARALLEL.split("\n<tool_call>")[0].replace("\n</tool_call>", "") + "\n</tool_call>"
    assert render([call, ToolCall("get_temperature_date", {"location": "San Francisco, CA, USA", "date": "2024-10-01"})]) == QWEN25_PARALLEL


def test_prose_around_blocks_is_content():
    text = (
        "<think>\nThe user wants the weather.\n</think>\n\nLet me check.\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\nOne moment.'
    )
    result = parse(text)
    assert result.calls == [ToolCall("get_weather", {"city": "Paris"})]
    assert result.content == "<think>\nThe user wants the weather.\n</think>\n\nLet me check.\n\nOne moment."


def test_plain_prose_is_no_call():
    result = parse("  The capital of France is Paris.\n")
    assert result.kind is ParseKind.NO_CALL
    assert result.content == "The capital of France is Paris."
    assert result.calls == []


def test_parameters_key_and_string_arguments_are_accepted():
    text = (
        '<tool_call>{"name": "a", "parameters": {"x": 1}}</tool_call>'
        '<tool_call>{"name": "b", "arguments": "{\\"y\\": [1, 2]}"}</tool_call>'
    )
    assert parse(text).calls == [ToolCall("a", {"x": 1}), ToolCall("b", {"y": [1, 2]})]


def test_close_tag_inside_an_argument_does_not_end_the_block():
    call = ToolCall("echo", {"text": "say </tool_call> then <tool_call>"})
    assert parse(render([call])).calls == [call]


def test_key_order_and_number_types_are_kept():
    result = parse('<tool_call>{"name": "f", "arguments": {"b": 1, "a": 1.0, "c": true, "d": null}}</tool_call>')
    args = result.calls[0].arguments
    assert list(args) == ["b", "a", "c", "d"]
    assert type(args["b"]) is int and type(args["a"]) is float and args["c"] is True


def test_unclosed_block_at_end_is_malformed():
    result = parse('Checking.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Par')
    assert result.kind is ParseKind.MALFORMED
    assert "block 0" in result.error and "not closed" in result.error
    assert result.content == "Checking."


def test_complete_json_without_close_tag_is_malformed():
    result = parse('<tool_call>\n{"name": "f", "arguments": {}}\n')
    assert result.kind is ParseKind.MALFORMED and "not closed" in result.error


def test_second_block_truncated_names_block_1():
    text = '<tool_call>{"name": "f", "arguments": {}}</tool_call>\n<tool_call>{"name": "g", "argu'
    result = parse(text)
    assert result.kind is ParseKind.MALFORMED and "block 1" in result.error


def test_invalid_json_names_block_and_json_error():
    result = parse("<tool_call>{'name': 'f', 'arguments': {}}</tool_call>")
    assert result.kind is ParseKind.MALFORMED
    assert result.error.startswith("<tool_call> block 0: invalid JSON: Expecting property name")


def test_text_after_json_inside_block_is_malformed():
    result = parse('<tool_call>{"name": "f", "arguments": {}}}</tool_call>')
    assert result.kind is ParseKind.MALFORMED and "expected </tool_call>" in result.error


def test_non_object_arguments_are_malformed():
    result = parse('<tool_call>{"name": "f", "arguments": [1, 2]}</tool_call>')
    assert result.kind is ParseKind.MALFORMED
    assert "arguments must be a JSON object, got array" in result.error


def test_missing_name_or_arguments_is_malformed():
    assert "'name' must be a non-empty string" in parse('<tool_call>{"arguments": {}}</tool_call>').error
    assert "no 'arguments' or 'parameters'" in parse('<tool_call>{"name": "f"}</tool_call>').error


def test_nan_is_malformed():
    result = parse('<tool_call>{"name": "f", "arguments": {"x": NaN}}</tool_call>')
    assert result.kind is ParseKind.MALFORMED and "NaN is not valid JSON" in result.error


def test_registered_under_hermes():
    assert get_format("hermes").parse(QWEN25_PARALLEL).kind is ParseKind.CALLS
