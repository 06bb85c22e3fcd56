from tooltune.formats import ParseKind, format_names, get_format
from tooltune.formats import glaive, hermes, json_format, openai, pythonic

RAW_PARSERS = {m.NAME: m.parse for m in (glaive, hermes, json_format, openai, pythonic)}


def test_every_format_module_is_registered_under_its_name():
    assert sorted(RAW_PARSERS) == format_names() == ["glaive", "hermes", "json", "openai", "pythonic"]
    for name in format_names():
        assert get_format(name).description


def test_rendering_no_calls_parses_as_no_call():
    for name in format_names():
        fmt = get_format(name)
        assert fmt.parse(fmt.render([])).kind is ParseKind.NO_CALL, name
