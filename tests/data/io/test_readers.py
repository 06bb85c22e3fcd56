"""Reading small real-world-shaped files of each format; bad records land in quarantine with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tooltune.data.examples import Behavior, Quality
from tooltune.data.io import import_file
from tooltune.data.quarantine import read_quarantine, write_quarantine
from tooltune.errors import DataError

FIXTURES = Path(__file__).parents[2] / "fixtures" / "io"


def calls(example):
    return [(c.name, c.arguments) for c in example.calls]


def quarantined(result):
    """``{line: first reason}`` of the quarantine records (their source is ``path:line``)."""
    return {int(q.source.rsplit(":", 1)[1]): q.reason[0] for q in result.quarantine}


def test_openai():
    result = import_file("openai", FIXTURES / "openai.jsonl", quality="high", dataset="oai-demo")
    single, parallel, multi_turn, refusal = result.examples
    assert calls(single) == [("get_current_weather", {"location": "Boston, MA"})]
    assert single.messages[0] == {"role": "system", "content": "You are a helpful assistant."}
    assert single.meta == {"parallel_tool_calls": False}
    assert single.inline_tools[0]["type"] == "function"  # kept verbatim, OpenAI wrapper included
    assert (single.provenance.quality, single.provenance.origin, single.service) == (Quality.HIGH, "oai-demo:openai.jsonl:1", "oai-demo")
    assert len(parallel.calls) == 2 and parallel.tools == ["get_current_weather", "get_local_time"]
    # The last calling turn is predicted; the earlier call, its result and the reply stay as context.
    assert calls(multi_turn) == [("get_local_time", {"location": "Paris"})]
    assert [m["role"] for m in multi_turn.messages] == ["user", "assistant", "tool", "assistant", "user"]
    assert multi_turn.messages[1]["tool_calls"][0]["function"]["arguments"] == {"location": "Paris"}
    assert (refusal.behavior, refusal.answer) == (Behavior.NO_CALL, "I can only help with weather and time questions.")
    reasons = quarantined(result)
    assert sorted(reasons) == [5, 6, 7, 8]
    assert "not valid JSON" in reasons[5]
    assert reasons[6].startswith("messages[1]: tool_calls[0].function: arguments string is not valid JSON")
    assert "'book_flight', which is not among the offered tools" in reasons[7]
    assert "no assistant turn" in reasons[8]
    assert result.quarantine[0].source == f"{FIXTURES / 'openai.jsonl'}:5"
    assert result.quarantine[0].record.startswith('{"messages"')  # the raw line


def test_sharegpt():
    result = import_file("sharegpt", FIXTURES / "sharegpt.jsonl")
    recipe, currency, refusal = result.examples
    assert calls(recipe) == [("search_recipes", {"ingredients": ["chicken", "tomatoes", "garlic"]})]
    assert [m["role"] for m in recipe.messages] == ["user", "assistant", "user"]
    assert calls(currency) == [("convert_currency", {"amount": 100, "from": "USD", "to": "EUR"}),
                               ("convert_currency", {"amount": 50, "from": "GBP", "to": "JPY"})]
    assert currency.messages[0] == {"role": "system", "content": "You are a finance assistant."}
    assert refusal.behavior is Behavior.NO_CALL
    reasons = quarantined(result)
    assert reasons[4].startswith("conversations[1]: not valid JSON")
    assert "unknown 'from' 'user'" in reasons[5]


def test_chatml():
    result = import_file("chatml", FIXTURES / "chatml.jsonl")
    both, refusal = result.examples
    assert calls(both) == [("get_current_weather", {"location": "Berlin"}), ("get_local_time", {"location": "Berlin"})]
    # The system prompt is the text before Qwen's "# Tools" section; the listing becomes inline_tools.
    assert both.messages[0]["content"] == "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    assert [t["function"]["name"] for t in both.inline_tools] == ["get_current_weather", "get_local_time"]
    assert refusal.answer == "I can only look up weather and time."
    assert "hermes tool call is malformed" in quarantined(result)[3]


def test_alpaca():
    result = import_file("alpaca", FIXTURES / "alpaca.jsonl")
    call, summary = result.examples
    assert calls(call) == [("get_current_weather", {"location": "Madrid", "unit": "celsius"})]
    assert summary.messages[-1]["content"] == "Summarise the weather report below.\nSunny, 25 degrees, light wind."
    assert summary.behavior is Behavior.NO_CALL
    reasons = quarantined(result)
    assert "not closed" in reasons[3]
    assert "tools[0]" in reasons[4] and "required lists 'city'" in reasons[4]


def test_alpaca_from_glaive_with_tools_in_the_system_prompt():
    result = import_file("alpaca", FIXTURES / "alpaca_glaive.jsonl", call_format="glaive")
    call, refusal = result.examples
    assert calls(call) == [("get_exchange_rate", {"base_currency": "USD", "target_currency": "EUR"})]
    assert call.tools == ["get_exchange_rate"] and call.messages == [{"role": "user", "content": call.user_text}]
    assert refusal.behavior is Behavior.NO_CALL and result.quarantine == []


def test_glaive_json_array():
    result = import_file("glaive", FIXTURES / "glaive.json")
    news, chat = result.examples
    assert calls(news) == [("get_news_headlines", {"country": "France"})]
    assert [m["role"] for m in news.messages] == ["user", "assistant", "tool", "assistant", "user"]
    assert news.provenance.origin == "glaive:glaive.json:2"  # line of the array item
    assert chat.tools == [] and chat.answer == "Skilled Trades"
    assert chat.messages[0] == {"role": "system", "content": "You are a helpful assistant, with no access to external functions."}
    reasons = quarantined(result)
    assert "'create_to_do_list', which is not among the offered tools (create_to-do_list)" in reasons[4]
    assert "glaive tool call is malformed" in reasons[5]


def test_xlam_keeps_its_schema_dialect():
    result = import_file("xlam", FIXTURES / "xlam.json")
    giveaways, quote, irrelevant = result.examples
    assert calls(giveaways) == [("live_giveaways_by_type", {"type": "beta"}), ("live_giveaways_by_type", {"type": "game"})]
    assert quote.inline_tools[0]["parameters"]["exchange"]["type"] == "str, optional"  # verbatim
    assert quote.meta == {"xlam_id": 1, "schema_dialect": "xlam"}
    stock = quote.offered_tools()[0]
    assert stock.required == ["symbol"]
    assert stock.properties["exchange"] == {"type": "string", "description": "Exchange code.", "default": "NASDAQ"}
    assert stock.properties["fields"]["type"] == "array"
    assert (irrelevant.behavior, irrelevant.answer) == (Behavior.NO_CALL, None)
    assert quarantined(result)[5].startswith("answers: not valid JSON")


def test_a_broken_json_array_names_the_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[\n  {"query": "a"},\n  {"query": \n]')
    with pytest.raises(DataError, match=r"broken.json:4: not valid JSON"):
        import_file("xlam", path)


def test_quarantine_records_can_be_written_and_read_back(tmp_path):
    result = import_file("openai", FIXTURES / "openai.jsonl")
    assert write_quarantine(result.quarantine, tmp_path / "q.jsonl") == 4
    assert read_quarantine(tmp_path / "q.jsonl") == result.quarantine
