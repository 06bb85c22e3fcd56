"""Property: no format's raw ``parse`` raises, whatever the text (safe_parse is only a backstop)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tooltune.formats import ParseKind, ParseResult, format_names
from tooltune.formats import glaive, hermes, json_format, openai, pythonic

RAW_PARSERS = {m.NAME: m.parse for m in (glaive, hermes, json_format, openai, pythonic)}
FRAGMENTS = [
    "<tool_call>", "</tool_call>", "<functioncall>", "<|endoftext|>", "{", "}", "[", "]", "(", ")", '"name"',
    '"arguments"', '"parameters"', '"tool_call"', '"tool_calls"', '"function"', '"role"', '"type"', ":", ",",
    "'", '"', "\\", "[f(", "math.", "a=", "**", "1", "-", "1e999", "NaN", "null", "true", "True", "None",
    "\n", " ", "```json\n", "```", "'{", "}'", "\x00", "\ud800", "1and", '"s"(', "f",
]
NEAR_MISSES = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=3)), max_size=25).map("".join)
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()))  # lone surrogates included


def test_every_registered_format_is_fuzzed():
    assert sorted(RAW_PARSERS) == format_names()


@pytest.mark.parametrize("format_name", sorted(RAW_PARSERS))
@settings(max_examples=300, deadline=None)
@given(text=st.one_of(ANY_TEXT, NEAR_MISSES))
def test_raw_parse_never_raises(format_name, text):
    result = RAW_PARSERS[format_name](text)
    assert isinstance(result, ParseResult)
    assert (result.error is not None) == (result.kind is ParseKind.MALFORMED)
    assert (len(result.calls) > 0) == (result.kind is ParseKind.CALLS)
