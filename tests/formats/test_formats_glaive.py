import pytest

from tooltune.errors import FormatError
from tooltune.formats import ParseKind
from tooltune.formats.glaive import parse, render
from tooltune.tools.call import ToolCall

# An assistant turn from glaive-function-calling-v2, after its "ASSISTANT: " prefix.
GLAIVE_V2_TURN = (
    '<functioncall> {"name": "convert_currency", "arguments": '
    "'{\"amount\": 500, \"from_currency\": \"USD\", \"to_currency\": \"EUR\"}'} <|endoftext|>"
)


def test_glaive_v2_line_with_single_quoted_arguments():
    result = parse(GLAIVE_V2_TURN)
    assert result.kind is ParseKind.CALLS
    assert result.calls == [ToolCall("convert_currency", {"amount": 500, "from_currency": "USD", "to_currency": "EUR"})]
    assert result.content == ""


def test_unescaped_apostrophe_inside_single_quotes():
    text = "<functioncall> {\"name\": \"get_movie_details\", \"arguments\": '{\"title\": \"Harry Potter and the Philosopher's Stone\"}'}"
    assert parse(text).calls == [ToolCall("get_movie_details", {"title": "Harry Potter and the Philosopher's Stone"})]


def test_render_is_the_dataset_form():
    call = ToolCall("get_news_headlines", {"country": "United States"})
    assert render([call]) == "<functioncall> {\"name\": \"get_news_headlines\", \"arguments\": '{\"country\": \"United States\"}'}"


def test_object_and_json_string_arguments_are_accepted():
    assert parse('<functioncall> {"name": "f", "arguments": {"a": 1}}').calls == [ToolCall("f", {"a": 1})]
    assert parse('<functioncall> {"name": "f", "arguments": "{\\"a\\": 1}"}').calls == [ToolCall("f", {"a": 1})]
    assert parse("<functioncall> {\"arguments\": '{}', \"name\": \"g\"}").calls == [ToolCall("g", {})]


def test_prose_before_and_parallel_segments():
    text = (
        "Sure, let me look both up.\n"
        "<functioncall> {\"name\": \"a\", \"arguments\": '{\"x\": 1}'}\n"
        "<functioncall> {\"name\": \"b\", \"arguments\": '{\"y\": [1.5, null]}'} <|endoftext|>"
    )
    result = parse(text)
    assert result.calls == [ToolCall("a", {"x": 1}), ToolCall("b", {"y": [1.5, None]})]
    assert result.content == "Sure, let me look both up."


def test_prose_answer_drops_end_of_text():
    result = parse("The exchange rate is 0.92 EUR per USD. <|endoftext|>")
    assert result.kind is ParseKind.NO_CALL
    assert result.content == "The exchange rate is 0.92 EUR per USD."


def test_truncated_segment_is_malformed():
    result = parse("<functioncall> {\"name\": \"f\", \"arguments\": '{\"a\": ")
    assert result.kind is ParseKind.MALFORMED
    assert result.error.startswith("<functioncall> 0: the single-quoted JSON of 'arguments' is not valid JSON")


def test_missing_closing_brace_is_malformed():
    result = parse("<functioncall> {\"name\": \"f\", \"arguments\": '{}'")
    assert result.kind is ParseKind.MALFORMED and "end of the text" in result.error


def test_invalid_json_in_quotes_is_malformed():
    result = parse("<functioncall> {\"name\": \"f\", \"arguments\": '{a: 1}'}")
    assert result.kind is ParseKind.MALFORMED and "single-quoted JSON of 'arguments'" in result.error


def test_no_object_after_tag_is_malformed():
    result = parse("Hello <functioncall> get_weather(city='Paris')")
    assert result.kind is ParseKind.MALFORMED
    assert "expected '{' after <functioncall>" in result.error
    assert result.content == "Hello"


def test_missing_arguments_and_non_object_arguments_are_malformed():
    assert "no 'arguments' key" in parse('<functioncall> {"name": "f"}').error
    assert "got array" in parse("<functioncall> {\"name\": \"f\", \"arguments\": '[1]'}").error


def test_render_rejects_empty_name():
    with pytest.raises(FormatError, match="call 0 has name ''"):
        render([ToolCall("", {})])
