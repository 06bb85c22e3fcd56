import pytest

from tooltune.errors import FormatError
from tooltune.formats import ParseKind
from tooltune.formats.pythonic import parse, render
from tooltune.tools.call import ToolCall


def test_bfcl_ground_truth_string():
    result = parse("[calculate_triangle_area(base=10, height=5, unit='units')]")
    assert result.kind is ParseKind.CALLS
    assert result.calls == [ToolCall("calculate_triangle_area", {"base": 10, "height": 5, "unit": "units"})]


def test_render_bfcl_form():
    call = ToolCall("calculate_triangle_area", {"base": 10, "height": 5, "unit": "units"})
    assert render([call]) == "[calculate_triangle_area(base=10, height=5, unit='units')]"


def test_dotted_names_and_parallel_calls():
    text = "[math.factorial(number=5), spotify.play(artist='Taylor Swift', duration=20)]"
    assert parse(text).calls == [
        ToolCall("math.factorial", {"number": 5}),
        ToolCall("spotify.play", {"artist": "Taylor Swift", "duration": 20}),
    ]


def test_literal_values():
    text = "[f(a=-3, b=2.0, c=-1e-300, d=True, e=None, g=(1, 'x'), h={'k v': [False, {}]}, i=+4, j='é\\n')]"
    args = parse(text).calls[0].arguments
    assert args == {"a": -3, "b": 2.0, "c": -1e-300, "d": True, "e": None, "g": [1, "x"], "h": {"k v": [False, {}]}, "i": 4, "j": "é\n"}
    assert list(args) == ["a", "b", "c", "d", "e", "g", "h", "i", "j"]
    assert type(args["b"]) is float and args["d"] is True


def test_bare_call_and_code_fence():
    assert parse('get_weather(city="Paris")').calls == [ToolCall("get_weather", {"city": "Paris"})]
    assert parse("```python\n[f(x=1)]\n```").calls == [ToolCall("f", {"x": 1})]


def test_no_call_texts():
    for text in ["The area is 25 square units.", "[]", "[1, 2]", "Sure! (I can help.)", "x", ""]:
        result = parse(text)
        assert result.kind is ParseKind.NO_CALL, text
        assert result.content == text.strip()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[f(x)]", "call 0 (f): positional argument 'x'"),
        ("[f(a=x)]", "call 0 (f) argument 'a': 'x' is not a literal"),
        ("[f(a=1)", "not valid Python"),
        ("f(a=1", "not valid Python"),
        ("[f(a=1)] and then", "is not one: '[f(a=1)] and then'"),
        ("[1, (2)]", "is not one"),
        ("[f(a=1), 2]", "item 1 of the list, '2', is not a function call"),
        ("[f(a=1, a=2)]", "argument 'a' is given twice"),
        ("[f(**kw)]", "unpacks arguments"),
        ("[f()(a=1)]", "'f()' is not a tool name"),
        ("[__import__('os').system(cmd='echo hi')]", "is not a tool name"),
        ("[f(a={1: 2})]", "dict key '1' is not a string literal"),
        ("[f(a={**b})]", "dict key **'b' is not a string literal"),
        ("[f(a=1e999)]", "'1e999' is not a finite number"),
        ("[f(a=b'x')]", "(bytes) is not a JSON value"),
        ("[f(a={1, 2})]", "is not a literal"),
        ("[f(a=1 + 2)]", "'1 + 2' is not a literal"),
        ("[f(a=-True)]", "'-True' is not a literal"),
        ("[f(a=f'{x}')]", "is not a literal"),
        ("[f(a=" + "-" * 5000 + "1)]", "nested too deeply"),
    ],
)
def test_malformed_with_reason(text, reason):
    result = parse(text)
    assert result.kind is ParseKind.MALFORMED, text
    assert reason in result.error, result.error


@pytest.mark.parametrize("name", ["get-weather", "class", "1f", "ﬁnd", "a..b", ".a", "a b", "f()"])
def test_render_rejects_names_python_cannot_express(name):
    with pytest.raises(FormatError, match="cannot be written as a Python call"):
        render([ToolCall(name, {})])


@pytest.mark.parametrize("key", ["a-b", "def", "None", "", "x y"])
def test_render_rejects_argument_names_that_are_not_identifiers(key):
    with pytest.raises(FormatError, match="is not a Python identifier"):
        render([ToolCall("f", {key: 1})])


def test_render_rejects_non_finite_float():
    with pytest.raises(FormatError, match="argument 'x': inf is not a JSON number"):
        render([ToolCall("f", {"x": float("inf")})])


def test_odd_but_valid_python_does_not_warn(recwarn):
    # '1and' and '"s"()' make the compiler emit SyntaxWarning; the parser must stay silent
    # (pytest turns warnings into errors here, so a leak would also fail the test).
    assert parse("[f(a=1and 2)]").kind is ParseKind.MALFORMED
    assert parse('["s"(a=1)]').kind is ParseKind.MALFORMED
    assert not recwarn.list
