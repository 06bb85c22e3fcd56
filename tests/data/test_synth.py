"""Synthetic generation: determinism, validity, wording of money and vocabulary, the behaviour
mix, distractors, clarify, chains executed on the real demo servers, and a teacher stand-in."""

from __future__ import annotations

import json
import random
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anyio
import pytest
from mcp.client import Client

import tooltune
from tooltune.data.curated import load_curated
from tooltune.data.examples import Behavior, Example, resolve_references
from tooltune.data.phrasing import add_typos, money_text
from tooltune.data.quality import example_problems, exact_key
from tooltune.data.sampling import regex_sampler, sampler_for
from tooltune.data.sequences import Chain, ChainStep
from tooltune.data.synth import Mix, SynthConfig, generate
from tooltune.demo import SERVICES, build_server
from tooltune.demo.chains import CHAINS
from tooltune.errors import ConfigError
from tooltune.tools.catalog import Tool, ToolCatalog
from tooltune.tools.validate import argument_problems

SHOP_YAML = Path(tooltune.__file__).parent / "demo" / "curated" / "shop.yaml"
CALLS_ONLY = Mix(calls=1, parallel=0, multi_step=0, clarify=0, no_call=0)


async def _list_demo_tools(data_dir: Path) -> list[Tool]:
    tools = []
    for service in SERVICES:
        async with Client(build_server(service, data_dir)) as client:
            for t in (await client.list_tools()).tools:
                hints = {"read_only_hint": t.annotations.read_only_hint} if t.annotations else {}
                tools.append(Tool.from_dict({"name": t.name, "description": t.description or "", "parameters": t.input_schema,
                                             "annotations": hints, "service": service}))
    return tools


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> ToolCatalog:
    """The four demo services, listed in-process over the MCP client (annotations included)."""
    return ToolCatalog(tools=anyio.run(_list_demo_tools, tmp_path_factory.mktemp("demo")))


@pytest.fixture(scope="module")
def curated(catalog):
    return load_curated(SHOP_YAML, catalog)


@pytest.fixture(scope="module")
def result(catalog, curated):
    return generate(catalog, SynthConfig(n=600, seed=7), curated=curated.examples, vocabulary=curated.vocabulary,
                    chains=CHAINS, server_factory=build_server)


def _jsonl(examples) -> str:
    return "".join(e.model_dump_json(exclude_none=True) + "\n" for e in examples)


# ---------------------------------------------------------------- determinism and validity


def test_same_seed_gives_byte_identical_output(catalog, curated, result):
    again = generate(catalog, SynthConfig(n=600, seed=7), curated=curated.examples, vocabulary=curated.vocabulary,
                     chains=CHAINS, server_factory=build_server)
    assert _jsonl(again.examples) == _jsonl(result.examples)
    assert again.dropped == result.dropped
    other = generate(catalog, SynthConfig(n=100, seed=8, mix=CALLS_ONLY), vocabulary=curated.vocabulary)
    # Another seed draws other requests; a few short ones without values (every listing the same
    # for a service) can come out identical by chance.
    assert len({e.id for e in other.examples} & {e.id for e in result.examples[:100]}) <= 3


def test_every_example_passes_the_quality_checks(catalog, curated, result):
    assert len(result.examples) == 600
    for e in result.examples:
        assert example_problems(e, catalog, curated.vocabulary) == [], e.user_text
        if e.behavior is Behavior.CALLS:
            for call in e.calls:
                assert argument_problems(catalog.get(call.name), call.arguments) == []
        assert e.meta["template_id"]
        assert e.provenance.source.value == "synthetic"


def test_examples_survive_a_json_round_trip(result):
    # Examples are built without validation for speed: validating the JSON proves they are sound.
    for e in result.examples:
        again = Example.model_validate_json(e.model_dump_json())
        assert again == e and again.id == e.id and again.model_fields_set == e.model_fields_set


def test_no_exact_duplicates_by_the_pipelines_key(result):
    keys = [exact_key(e) for e in result.examples]
    assert len(set(keys)) == len(keys)


def test_behaviour_mix_matches_the_config(catalog, result):
    by = {b.value: sum(e.behavior is b for e in result.examples) for b in Behavior}
    assert by == {"calls": 390, "sequence": 60, "clarify": 60, "no_call": 90}  # parallel are calls with 2-3 calls
    assert sum(len(e.calls) > 1 for e in result.examples if e.behavior is Behavior.CALLS) == 60
    kinds = result.stats["no_call_kinds"]
    assert set(kinds) == {"chitchat", "withheld_tool", "unsupported_action"}


def test_many_templates_per_tool_and_varied_phrasing(result):
    assert min(result.stats["templates_per_tool"].values()) >= 12
    assert result.stats["templates_used"] > 300
    registers = {e.meta.get("register") for e in result.examples}
    assert {"formal", "informal", "shorthand", "neutral", "curated"} <= registers
    assert result.stats["with_typos"] > 20


def test_config_errors_are_reported_together():
    with pytest.raises(ValueError) as e:
        SynthConfig(mix=Mix(calls=0.9), distractors_min=5, distractors_max=1, teacher_url="http://127.0.0.1:1/v1")
    text = str(e.value)
    assert "add up to 1.35" in text and "distractors_min (5)" in text and "teacher_model" in text


# ---------------------------------------------------------------- wording


_MONEY = re.compile(r"(C\$|A\$|[$€£¥])(\d[\d,]*)(?:\.(\d\d))?|(\d[\d,]*)(?:\.(\d\d))? (Canadian dollars|Australian dollars|dollars|euros|pounds|yen|USD|EUR|GBP|CAD|AUD|JPY)")
_CURRENCY = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "C$": "CAD", "A$": "AUD", "dollars": "USD", "euros": "EUR",
             "pounds": "GBP", "yen": "JPY", "Canadian dollars": "CAD", "Australian dollars": "AUD"}


def test_money_is_said_in_units_and_called_in_cents(catalog, curated):
    assert money_text(1250, "USD", "symbol", random.Random(0)) == "$12.50"
    assert money_text(5000, "EUR", "word", random.Random(1)).endswith(" euros")
    res = generate(catalog.for_service("shop"), SynthConfig(n=400, seed=3, mix=CALLS_ONLY), vocabulary=curated.vocabulary)
    checked, currencies = 0, set()
    for e in res.examples:
        call = e.calls[0]
        if call.name != "create_payment":
            continue
        m = _MONEY.search(e.user_text)
        symbol = m.group(1) or m.group(6)
        whole, cents = (m.group(2), m.group(3)) if m.group(1) else (m.group(4), m.group(5))
        currency = _CURRENCY.get(symbol, symbol)
        amount = int(whole.replace(",", "")) * (1 if currency == "JPY" else 100) + int(cents or 0)
        assert call.arguments["amount"] == amount, e.user_text
        assert call.arguments.get("currency", "USD") == currency, e.user_text
        checked += 1
        currencies.add(currency)
    assert checked > 20 and len(currencies) >= 2
    texts = " ".join(e.user_text for e in res.examples)
    assert re.search(r"\$\d+\.\d\d", texts) and " dollars" in texts


def test_vocabulary_terms_word_enum_values(catalog, curated):
    res = generate(catalog.for_service("shop"), SynthConfig(n=400, seed=5, mix=CALLS_ONLY), vocabulary=curated.vocabulary)
    said = [e.user_text.lower() for e in res.examples
            if e.calls[0].name == "get_orders" and e.calls[0].arguments["fulfillment_state"] == "awaiting_shipment"]
    terms = ("pending", "not shipped yet", "unshipped", "waiting to ship", "not sent out")
    assert sum(any(t in s for t in terms) for s in said) >= 3
    assert not any("awaiting_shipment" in s for s in said)


def test_typos_never_touch_values():
    segments = [("Please refund the payment ", False), ("pay_0001", True), (" for the customer", False)]
    for seed in range(50):
        out, made = add_typos(segments, random.Random(seed), 2)
        assert made >= 1 and out[1] == ("pay_0001", True)


def test_curated_queries_become_templates_with_new_values_and_negatives(result, curated):
    worded = [e for e in result.examples if "curated_origin" in e.meta]
    assert len(worded) >= 10
    originals = {e.user_text for e in curated.examples}
    assert sum(e.user_text not in originals for e in worded) >= len(worded) - 2
    with_negatives = [e for e in worded if e.meta.get("negatives")]
    assert with_negatives
    for e in with_negatives:
        for neg in e.meta["negatives"]:
            if neg["name"] == e.calls[0].name:
                assert neg["arguments"] != e.calls[0].arguments


# ---------------------------------------------------------------- offered tools and behaviours


def test_distractors_follow_the_configured_counts(catalog, curated):
    res = generate(catalog, SynthConfig(n=200, seed=2, mix=CALLS_ONLY, listing="sampled", distractors_min=2,
                                        distractors_max=3))
    for e in res.examples:
        called = {c.name for c in e.calls}
        assert called <= set(e.tools)
        assert 2 <= len(set(e.tools) - called) <= 3
        assert len(e.tools) == len(set(e.tools))
    assert set(res.stats["distractors"]) == {"2", "3"}


def test_most_examples_offer_their_services_listing_and_the_rest_a_fixed_variant(catalog):
    res = generate(catalog, SynthConfig(n=600, seed=3, listing_variants=0.2, execute_multistep=False))
    full = 0
    for e in res.examples:
        called = {c.name for c in e.calls}
        services = {catalog.get(n).service for n in called or e.tools}  # a parallel request may span two services
        listing = [t.name for t in catalog if t.service in services and t.name != e.meta.get("withheld_tool")]
        assert called <= set(e.tools) and len(e.tools) == len(set(e.tools))
        if "withheld_tool" in e.meta:  # the request's own tool, and tools about the same thing, are never offered
            assert e.meta["withheld_tool"] not in e.tools and set(e.tools) <= set(listing)
            continue
        full += e.tools == listing
        variants = [listing[::-1], [n for n in listing if n in called] or e.tools,
                    *([n for n in listing if n != d] for d in listing if d not in called)]
        assert e.tools == listing or e.tools in variants, e.tools
    assert 0.7 < full / len(res.examples) < 0.9
    # A handful of prompt prefixes, not one per example: prefix-shared training reads each once per row.
    assert len({tuple(e.tools) for e in res.examples}) < 6 * len(catalog)


def test_clarify_examples_miss_a_required_parameter(catalog, result):
    clarify = [e for e in result.examples if e.behavior is Behavior.CLARIFY]
    assert clarify
    for e in clarify:
        tool = catalog.get(e.meta["tool"])
        assert e.clarify.missing and set(e.clarify.missing) <= set(tool.required)
        assert e.clarify.question and not e.calls and tool.name in e.tools


def test_no_call_offers_no_tool_for_the_request(result):
    for e in result.examples:
        if e.behavior is Behavior.NO_CALL:
            assert not e.calls and e.answer and e.tools
            if "withheld_tool" in e.meta:
                assert e.meta["withheld_tool"] not in e.tools


# ---------------------------------------------------------------- multi-step on the real demo servers


async def _replay(example, data_dir: Path) -> list:
    """Run the example's calls on a fresh demo server, resolving references as training does."""
    results: list = []
    async with Client(build_server(example.service, data_dir)) as client:
        for i, call in enumerate(example.calls):
            args = resolve_references(call.arguments, results, i)
            reply = await client.call_tool(call.name, args)
            assert not reply.is_error, reply.content
            results.append(reply.structured_content)
    return results


def test_sequences_were_executed_and_their_references_resolve(result, tmp_path):
    sequences = [e for e in result.examples if e.behavior is Behavior.SEQUENCE]
    assert len({e.meta["chain"] for e in sequences}) >= 5
    assert any("{prev." in json.dumps(c.arguments) for e in sequences for c in e.calls)
    replayed: set[str] = set()
    for e in sequences:
        assert len(e.step_results) == len(e.calls) and all(e.step_results)
        for i, call in enumerate(e.calls):
            resolve_references(call.arguments, e.step_results, i)  # raises if a reference does not resolve
        if e.meta["chain"] not in replayed:  # one replay per chain keeps this fast
            replayed.add(e.meta["chain"])
            assert anyio.run(_replay, e, tmp_path / e.meta["chain"]) == e.step_results
    assert result.stats["chains"]["instances_executed"] >= len({e.meta["chain"] for e in sequences})


def test_failed_chains_are_dropped_and_counted(catalog):
    chains = [
        Chain(id="ok", service="shop", steps=(ChainStep("get_customer_by_email", {"email": "{email}"}),
                                              ChainStep("get_latest_order", {"customer_id": "{prev.customer_id}"})),
              slots={"email": ("maria.garcia@example.com",)}, requests=("Latest order of {email}?",)),
        Chain(id="ambiguous", service="shop", steps=(ChainStep("get_customer_by_name", {"name": "{name}"}),
                                                     ChainStep("get_latest_order", {"customer_id": "{prev.customer_id}"})),
              slots={"name": ("John",)}, requests=("What did {name} order last?",)),
    ]
    mix = Mix(calls=0.5, parallel=0, multi_step=0.5, clarify=0, no_call=0)
    res = generate(catalog, SynthConfig(n=10, seed=1, mix=mix, typo_rate=0), chains=chains, server_factory=build_server)
    assert res.dropped["tool_error:get_customer_by_name"] == 1
    sequences = [e for e in res.examples if e.behavior is Behavior.SEQUENCE]
    assert sequences and {e.meta["chain"] for e in sequences} == {"ok"}
    assert res.stats["chains"]["instances_failed"] == 1


def test_multi_step_share_moves_to_calls_when_execution_is_off(catalog):
    res = generate(catalog, SynthConfig(n=50, seed=1, execute_multistep=False), chains=CHAINS, server_factory=build_server)
    assert not any(e.behavior is Behavior.SEQUENCE for e in res.examples)
    assert res.stats["reallocated"]["multi_step_to_calls"] == 5


def test_chains_come_from_the_caller(catalog):
    # Synthesis knows no services: without chains from its caller there is nothing to execute.
    res = generate(catalog, SynthConfig(n=50, seed=1))
    assert not any(e.behavior is Behavior.SEQUENCE for e in res.examples)
    assert res.stats["reallocated"] == {"multi_step_to_calls": 5, "reason": "no declared chain fits this catalog"}
    with pytest.raises(ConfigError, match="without a server_factory"):
        generate(catalog, SynthConfig(n=50, seed=1), chains=CHAINS)


# ---------------------------------------------------------------- argument sampling


def test_sampler_covers_types_formats_bounds_and_patterns():
    tool = Tool(name="make_thing", parameters={
        "type": "object",
        "properties": {
            "thing_id": {"type": "string", "format": "uuid"},
            "when": {"type": "string", "format": "date-time"},
            "day": {"type": "string", "format": "date"},
            "site": {"type": "string", "format": "uri"},
            "code": {"type": "string", "pattern": "^[A-Z]{3}-\\d{4}$"},
            "ratio": {"type": "number", "minimum": 0.5, "maximum": 0.75},
            "count": {"type": "integer", "exclusiveMinimum": 10, "maximum": 12},
            "flag": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 4, "uniqueItems": True},
            "owner": {"$ref": "#/$defs/Owner"},
            "note": {"anyOf": [{"type": "string", "maxLength": 5}, {"type": "null"}]},
            "level": {"enum": ["low", "high"]},
        },
        "required": ["thing_id", "code", "ratio", "count", "tags", "owner"],
        "$defs": {"Owner": {"type": "object", "properties": {"email": {"type": "string", "format": "email"}},
                            "required": ["email"]}},
    })
    sampler = sampler_for(tool)
    rng = random.Random(0)
    for _ in range(200):
        args = sampler.sample(rng, optional_rate=0.7)
        assert args is not None and argument_problems(tool, args) == [], args
    for regex in (r"^([01]\d|2[0-3]):[0-5]\d$", r"^[A-Z]{2,4}_[^_]\w+\.(md|txt)$", r"^(?:ab|cd)+-?\d{3}$"):
        draw = regex_sampler(regex)
        assert all(re.search(regex, draw(rng)) for _ in range(100)), regex


def test_ids_mimic_the_example_in_the_description(catalog):
    sampler = sampler_for(catalog.get("get_latest_order"))
    rng = random.Random(1)
    assert all(re.fullmatch(r"cus_\d{4}", sampler.sample(rng)["customer_id"]) for _ in range(20))


# ---------------------------------------------------------------- teacher stand-in


class _StandInTeacher(BaseHTTPRequestHandler):
    """A stand-in for an OpenAI-compatible server: deterministic 'paraphrases', and one that
    drops email addresses so that the generator has something to reject."""

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        request = body["messages"][-1]["content"]
        reply = re.sub(r"\S+@\S+", "them", request) if "@" in request else f"Could you handle this for me: {request}"
        payload = json.dumps({
            "id": "standin-1", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def teacher_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StandInTeacher)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_teacher_paraphrases_are_validated(catalog, curated, teacher_url):
    config = SynthConfig(n=80, seed=4, mix=CALLS_ONLY, teacher_url=teacher_url, teacher_model="stand-in", teacher_rate=0.5)
    res = generate(catalog.for_service("shop"), config, vocabulary=curated.vocabulary)
    stats = res.stats["teacher"]
    assert stats["accepted"] > 10 and stats["rejected:missing_value"] > 0
    assert stats["asked"] == stats["accepted"] + sum(v for k, v in stats.items() if k.startswith(("rejected", "error")))
    paraphrased = [e for e in res.examples if e.meta.get("paraphrased_by") == "stand-in"]
    assert len(paraphrased) == stats["accepted"]
    for e in paraphrased:
        assert e.user_text.startswith("Could you handle this for me: ") and e.meta["template_text"] in e.user_text
        assert example_problems(e, catalog, curated.vocabulary) == []
    assert not any("them" in e.user_text and e.meta.get("paraphrased_by") for e in res.examples)
