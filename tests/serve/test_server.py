"""A real `tooltune serve` process on 127.0.0.1, driven with the official openai client."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import jsonschema
import openai
import pytest

SHOP_QUERY = "Show me the orders that are awaiting shipment"


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def openai_tools(shop_tools):
    return [t.to_openai() for t in shop_tools]


def _schema(shop_tools, name):
    return next(t.parameters for t in shop_tools if t.name == name)


def test_named_tool_choice_returns_a_schema_valid_call(client, openai_tools, shop_tools):
    response = client.chat.completions.create(
        model="base", messages=[{"role": "user", "content": SHOP_QUERY}], tools=openai_tools,
        tool_choice={"type": "function", "function": {"name": "get_orders"}})
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_") and call.function.name == "get_orders"
    arguments = json.loads(call.function.arguments)  # a JSON string, as OpenAI sends it
    jsonschema.validate(arguments, _schema(shop_tools, "get_orders"))
    assert arguments["fulfillment_state"] in ("awaiting_shipment", "shipped", "delivered", "cancelled")
    assert response.usage.prompt_tokens > 100 and response.usage.completion_tokens > 5
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens
    assert response.model == "base"


def test_required_tool_choice_calls_one_of_the_offered_tools(client, openai_tools, shop_tools):
    response = client.chat.completions.create(
        model="base", messages=[{"role": "user", "content": SHOP_QUERY}], tools=openai_tools, tool_choice="required")
    calls = response.choices[0].message.tool_calls
    assert response.choices[0].finish_reason == "tool_calls" and calls
    for call in calls:
        jsonschema.validate(json.loads(call.function.arguments), _schema(shop_tools, call.function.name))


def test_streaming_matches_the_non_streamed_answer(client, openai_tools):
    request = dict(model="base", messages=[{"role": "user", "content": "Hello, who are you?"}], max_tokens=24)
    response = client.chat.completions.create(**request)
    whole = response.choices[0]
    chunks = list(client.chat.completions.create(**request, stream=True, stream_options={"include_usage": True}))
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 1  # token by token, not one block at the end
    assert "".join(pieces) == whole.message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.finish_reason
    assert chunks[-1].usage == response.usage

    # A streamed call arrives as tool_calls deltas carrying the name and the JSON arguments.
    stream = client.chat.completions.create(
        model="base", messages=[{"role": "user", "content": "orders awaiting shipment"}], tools=openai_tools,
        tool_choice={"type": "function", "function": {"name": "get_orders"}}, stream=True)
    deltas, finish = [], None
    for chunk in stream:
        delta = chunk.choices[0].delta
        deltas += delta.tool_calls or []
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls" and deltas[0].function.name == "get_orders"
    assert json.loads("".join(d.function.arguments or "" for d in deltas))["fulfillment_state"]


def _error(call) -> tuple[int, dict]:
    with pytest.raises(openai.APIStatusError) as caught:
        call()
    return caught.value.status_code, caught.value.body


@pytest.mark.parametrize("request_body, param", [
    ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "user", "content": "hi"}], "tool_choice": "required"}, "tool_choice"),
    ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}, "max_tokens"),
    ({"messages": [{"role": "user", "content": "hi"}], "n": 3}, "n"),
    ({"messages": [{"role": "assistant", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_orders", "arguments": "{not json"}}]}]},
     "messages[0].tool_calls[0].function.arguments"),
])
def test_malformed_requests_get_400_naming_the_field(server, request_body, param):
    response = httpx.post(f"{server}/v1/chat/completions", json={"model": "base", **request_body}, timeout=60)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error" and error["message"]


def test_openai_client_sees_400_and_404(client, openai_tools):
    status, body = _error(lambda: client.chat.completions.create(
        model="base", messages=[{"role": "user", "content": "hi"}], tools=openai_tools,
        tool_choice={"type": "function", "function": {"name": "teleport"}}))
    assert status == 400 and body["param"] == "tool_choice.function.name" and "teleport" in body["message"]
    status, body = _error(lambda: client.chat.completions.create(
        model="base", messages=[{"role": "user", "content": "hi"}], extra_body={"tool_choise": "auto"}))
    assert status == 400 and body["param"] == "tool_choise"
    status, body = _error(lambda: client.chat.completions.create(model="nobody", messages=[{"role": "user", "content": "hi"}]))
    assert status == 404 and body["param"] == "model" and body["code"] == "model_not_found"


def test_invalid_json_body_is_a_400(server):
    response = httpx.post(f"{server}/v1/chat/completions", content=b'{"model": "base", "messages": [',
                          headers={"content-type": "application/json"}, timeout=30)
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]["message"]


def test_models_lists_base_adapters_and_registry_versions(client):
    ids = [m.id for m in client.models.list()]
    assert ids[:3] == ["base", "a", "b"]
    assert {"shop-assistant", "shop-assistant@1.0.0", "shop-assistant@1.0.1"} <= set(ids), ids


def _text(client, model, **extra):
    response = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello"}],
                                              max_tokens=12, **extra)
    return response.model, response.choices[0].message.content


def test_adapters_swap_per_request_without_racing(client):
    sequential = {m: _text(client, m)[1] for m in ("base", "a", "b")}
    assert len(set(sequential.values())) == 3  # each adapter really changes the model
    with ThreadPoolExecutor(6) as pool:
        concurrent = list(pool.map(lambda m: (m, _text(client, m)[1]), ["a", "b", "base", "b", "a", "base"]))
    assert all(text == sequential[m] for m, text in concurrent)


def test_per_service_routing_follows_the_registry(client):
    """1.0.1 passed its gate for shop only: shop requests get it, calendar ones keep 1.0.0."""
    shop = _text(client, "shop-assistant", extra_headers={"X-Tooltune-Service": "shop"})
    calendar = _text(client, "shop-assistant", extra_headers={"X-Tooltune-Service": "calendar"})
    everyone = _text(client, "shop-assistant")
    assert shop[0] == "shop-assistant@1.0.1" and calendar[0] == everyone[0] == "shop-assistant@1.0.0"
    # Each version serves its own adapter: the same outputs as the adapters loaded by name.
    assert shop[1] == _text(client, "b")[1] and calendar[1] == _text(client, "a")[1] != shop[1]
    assert _text(client, "shop-assistant@1.0.1")[1] == shop[1]
    status, body = _error(lambda: _text(client, "shop-assistant@9.9.9"))
    assert status == 404 and "9.9.9" in body["message"]
