"""Property: for every registered format, parse(render(calls)) gives back exactly the calls."""

import json
import keyword
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tooltune.formats import ParseKind, format_names, get_format
from tooltune.tools.call import ToolCall

# Strings that stress quoting and the formats' own markup.
TRICKY = st.sampled_from(
    ["'", '"', "\\", "\\'", '\\"', "\n", "\t", "</tool_call>", "<tool_call>", "<functioncall>", "<|endoftext|>",
     "'}", "{", "}", "[", "]", "(", ")", "é", "日本", "\u2028", "\x00", "😀", "```", "NaN", "1e999"]
)
STRINGS = st.one_of(st.text(), st.lists(st.one_of(TRICKY, st.text(max_size=3)), max_size=6).map("".join))
JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from([1.0, -0.0, 1e-300, 1e300, 5e-324, 0.1]),
        STRINGS,
    ),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(STRINGS, children, max_size=4)),
    max_leaves=12,
)


def _is_identifier(s: str) -> bool:
    return s.isidentifier() and not keyword.iskeyword(s) and unicodedata.normalize("NFKC", s) == s


# pythonic's documented name alphabet: identifiers (unicode ones included), joined by dots.
IDENTIFIERS = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True),
    st.text(st.characters(categories=["L", "Nd", "Pc", "Mn"]), min_size=1, max_size=8),
).filter(_is_identifier)
NAME_STRATEGIES = {"pythonic": st.lists(IDENTIFIERS, min_size=1, max_size=3).map(".".join)}
ARGUMENT_KEYS = {"pythonic": IDENTIFIERS}
ANY_NAME = st.one_of(st.text(min_size=1), STRINGS.filter(bool))


def calls_for(format_name: str) -> st.SearchStrategy[list[ToolCall]]:
    names = NAME_STRATEGIES.get(format_name, ANY_NAME)
    arguments = st.dictionaries(ARGUMENT_KEYS.get(format_name, STRINGS), JSON_VALUES, max_size=5)
    return st.lists(st.builds(ToolCall, name=names, arguments=arguments), min_size=1, max_size=4)


def strict(calls: list[ToolCall]) -> str:
    """Equality that also sees key order, 1 vs 1.0 vs True and -0.0 (== does not)."""
    return json.dumps([call.to_dict() for call in calls])


def check_roundtrip(format_name: str, data: st.DataObject) -> None:
    fmt = get_format(format_name)
    calls = data.draw(calls_for(format_name))
    text = fmt.render(calls)
    result = fmt.parse(text)
    assert result.kind is ParseKind.CALLS, (text, result.error)
    assert result.calls == calls
    assert strict(result.calls) == strict(calls)


@pytest.mark.parametrize("format_name", format_names())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_roundtrip(format_name, data):
    check_roundtrip(format_name, data)


@pytest.mark.slow
@pytest.mark.parametrize("format_name", format_names())
@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_roundtrip_1000(format_name, data):
    check_roundtrip(format_name, data)
