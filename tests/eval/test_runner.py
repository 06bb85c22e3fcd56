"""The eval runner on a tiny random Llama: batching, parsing, timings, output files, constraints."""

from __future__ import annotations

import json

import jsonschema
import pytest
from pydantic import ValidationError

from tests.conftest import build_tiny_tokenizer
from tooltune.data.examples import Behavior, Example, ExpectedCall, Provenance, Source, write_jsonl
from tooltune.errors import DataError
from tooltune.eval.compare import compare
from tooltune.runtime.generate import Generation, Generator, _TurnEnd
from tooltune.eval.runner import EvalConfig, evaluate_examples, run_eval
from tooltune.formats.base import get_format
from tooltune.tools.call import ToolCall

HERMES = get_format("hermes")


def _example(text: str, calls: list[ExpectedCall], tools: list[str], behavior=Behavior.CALLS, **kw) -> Example:
    return Example(messages=[{"role": "user", "content": text}], tools=tools, behavior=behavior, calls=calls,
                   provenance=Provenance(source=Source.CURATED), **kw)


PAY = _example("Charge cus_0001 $50 for invoice inv_1043", [ExpectedCall(
    name="create_payment", arguments={"amount": 5000, "invoice_id": "inv_1043", "customer_id": "cus_0001"}, optional=["currency"])],
    ["create_payment", "get_orders"])
NO_CALL = _example("Tell me a joke about shipping.", [], ["get_orders"], behavior=Behavior.NO_CALL)
JOHN = _example("Process the payment for John Smith's latest order.", [
    ExpectedCall(name="get_customer_by_name", arguments={"name": "John Smith"}),
    ExpectedCall(name="get_latest_order", arguments={"customer_id": "{prev.customer_id}"}),
], ["get_customer_by_name", "get_latest_order", "create_payment"], behavior=Behavior.SEQUENCE, service="shop")


def test_left_padded_batches_give_the_same_greedy_outputs_as_one_at_a_time(tiny_loaded, shop_catalog):
    tools = [shop_catalog.get("create_payment")]
    requests = [([{"role": "user", "content": "Charge John fifty dollars. " * n}], tools if n % 2 else None) for n in range(1, 8)]
    batched = Generator(tiny_loaded, max_new_tokens=12, batch_size=4).generate(requests)
    single = Generator(tiny_loaded, max_new_tokens=12, batch_size=1).generate(requests)
    assert len({g.prompt_tokens for g in batched}) == len(requests)  # every batch really was padded
    assert [g.text for g in batched] == [g.text for g in single]
    assert [g.new_tokens for g in batched] == [g.new_tokens for g in single]
    assert all(g.latency_ms > 0 and 0 < g.new_tokens <= 12 for g in batched)


def test_batches_hold_at_most_max_batch_tokens_padded_prompt_tokens(tiny_loaded, shop_catalog):
    generator = Generator(tiny_loaded, batch_size=4, max_batch_tokens=1000)
    lengths = [600, 400, 300, 250, 240, 100, 90, 80, 70, 60]  # sorted longest first, as generate sorts them
    batches = generator._batches(list(range(len(lengths))), [(0, n) for n in lengths])
    assert batches == [[0], [1, 2], [3, 4, 5, 6], [7, 8, 9]]
    assert all(len(b) * lengths[b[0]] <= 1000 for b in batches)
    # A prompt longer than the budget still runs, alone.
    assert generator._batches([0, 1], [(0, 5000), (0, 10)]) == [[0], [1]]
    # A cached prefix still takes room in every row: the widest prefix plus the longest rest.
    assert generator._batches([0, 1, 2], [(100, 150), (300, 140), (0, 130)]) == [[0, 1], [2]]
    # The budget changes the batches, not the outputs.
    requests = [([{"role": "user", "content": "Charge John fifty dollars. " * n}], None) for n in (1, 4, 9)]
    roomy = Generator(tiny_loaded, max_new_tokens=8, batch_size=3).generate(requests)
    tight = Generator(tiny_loaded, max_new_tokens=8, batch_size=3, max_batch_tokens=1).generate(requests)
    assert [g.text for g in roomy] == [g.text for g in tight]


class _Scripted:
    """Stands in for a Generator: fixed outputs, in request order."""

    call_format = HERMES

    def __init__(self, outputs: list[str]):
        self.outputs, self.wall_s = outputs, 0.0

    def generate(self, requests):
        self.wall_s += 0.5
        return [Generation(text=o, prompt_tokens=10, new_tokens=5, latency_ms=100.0 + i, stopped=True)
                for i, o in enumerate(self.outputs)]


def test_outputs_are_parsed_with_the_models_call_format_and_timed(shop_catalog):
    pay = HERMES.render([ToolCall("create_payment", {"amount": 5000, "invoice_id": "inv_1043", "customer_id": "cus_0001"})])
    run = evaluate_examples(_Scripted([pay, "<tool_call>\n{broken", "No jokes here, sorry."]), [PAY, PAY, NO_CALL],
                            shop_catalog, split="test_phrasing")
    assert [r.correct for r in run.results] == [True, False, True]
    assert run.results[1].match.reason.value == "parse_failed"
    assert run.results[0].record()["output"] == pay and run.results[0].record()["latency_ms"] == 100.0
    m = run.metrics
    assert m.exact_match.correct == 2 and m.per_split["test_phrasing"].total == 3
    assert m.latency_ms_p50 == 101.0 and m.latency_ms_p95 == pytest.approx(101.9)
    assert m.tokens_per_s == 30.0  # 15 tokens in 0.5 s


def test_run_eval_writes_split_and_overall_results(tiny_model_dir, shop_catalog, tmp_path):
    data = tmp_path / "data"
    shop_catalog.save(data / "catalog.json")
    write_jsonl([PAY, NO_CALL, PAY.model_copy(update={"messages": [{"role": "user", "content": "pay inv_1043 now"}]})],
                data / "test_phrasing.jsonl")
    write_jsonl([JOHN], data / "test_multistep.jsonl")
    config = EvalConfig(model=str(tiny_model_dir), data_dir=data, output_dir=tmp_path / "out", max_new_tokens=8,
                        batch_size=2, agent_max_steps=2)
    result = run_eval(config)

    out = tmp_path / "out"
    assert set(result.splits) == {"test_phrasing", "test_multistep"}
    assert result.skipped_splits == ["test_zero_shot", "holdout"]
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(lines) == 4 and {line["split"] for line in lines} == {"test_phrasing", "test_multistep"}
    assert all(line["new_tokens"] <= 8 and line["latency_ms"] > 0 for line in lines)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 4 and metrics["latency_ms_p50"] > 0 and metrics["tokens_per_s"] > 0
    assert json.loads((out / "test_phrasing" / "metrics.json").read_text())["n"] == 3
    agent = json.loads((out / "test_multistep" / "agent_metrics.json").read_text())
    assert agent["n"] == 1 and agent["step_accuracy"]["total"] == 2
    run = json.loads((out / "run.json").read_text())
    assert run["model"]["call_format"] == "hermes"
    assert run["machine"]["precision"] == "fp32" and run["machine"]["cores"] >= 1 and run["machine"]["cpu_model"]
    assert compare(out, out).row("overall").delta == 0  # the compare tool reads a run's output


def test_config_reports_every_bad_field_and_missing_splits(tmp_path):
    with pytest.raises(ValidationError) as err:
        EvalConfig(model="m", splits=["test_phrasing", "tset_holdout"], batch_size=0, dtype="fp8")
    assert {e["loc"][0] for e in err.value.errors()} == {"splits", "batch_size", "dtype"}
    with pytest.raises(DataError, match="holdout.jsonl"):
        run_eval(EvalConfig(model="m", data_dir=tmp_path, splits=["holdout"]))


def test_a_closed_call_followed_by_prose_ends_the_turn_but_a_second_call_does_not():
    tok = build_tiny_tokenizer()
    call = '<tool_call>\n{"name": "create_payment", "arguments": {"amount": 5000}}\n</tool_call>'
    turn_end = _TurnEnd(tok, 0, [tok.eos_token_id], ("<tool_call>", "</tool_call>"), 0.0)

    def ends(text: str) -> bool:
        return turn_end._after_block(tok(text, return_tensors="pt")["input_ids"][0][-12:])

    assert ends(call + "\nS")  # checked after every token: the first character of prose ends it
    assert not ends(call + "\n<tool")
    assert not ends(call + "\n")
    assert not ends(call[:-3])


# -- constrained decoding ---------------------------------------------------------------------


def _accepts(grammar: str, text: str) -> bool:
    import llguidance
    import llguidance.hf

    tok = build_tiny_tokenizer()
    matcher = llguidance.LLMatcher(llguidance.hf.from_tokenizer(tok), grammar, log_level=0)
    return matcher.consume_tokens(tok(text, add_special_tokens=False)["input_ids"]) and matcher.is_accepting()


def test_grammar_allows_offered_calls_and_plain_text_only(shop_catalog):
    pytest.importorskip("llguidance")
    from tooltune.runtime.constrained import tool_call_grammar

    grammar = tool_call_grammar(HERMES, [shop_catalog.get("create_payment"), shop_catalog.get("get_orders")])
    ok = HERMES.render([ToolCall("create_payment", {"amount": 5000, "invoice_id": "inv_1", "customer_id": "cus_1"})])
    assert _accepts(grammar, ok)
    assert _accepts(grammar, ok + "\n" + HERMES.render([ToolCall("get_orders", {"fulfillment_state": "shipped"})]))
    assert _accepts(grammar, "I can't help with that.") and _accepts(grammar, "")
    assert not _accepts(grammar, HERMES.render([ToolCall("delete_everything", {})]))  # not offered
    assert not _accepts(grammar, ok.replace("5000", '"$50"'))  # integer parameter
    assert not _accepts(grammar, HERMES.render([ToolCall("get_orders", {"fulfillment_state": "pending"})]))  # enum
    assert not _accepts(grammar, HERMES.render([ToolCall("create_payment", {"amount": 5000})]))  # required missing
    assert not _accepts(grammar, "Sure: " + ok)  # a turn is text or calls, never both
    assert not _accepts(tool_call_grammar(HERMES, [shop_catalog.get("get_orders")], allow_text=False), "Hello")


ALARM = {"name": "set_alarm", "description": "Set an alarm.", "parameters": {"type": "object", "properties": {
    "hour": {"type": "integer", "minimum": 0, "maximum": 23}, "minute": {"type": "integer", "minimum": 0, "maximum": 59},
    "repeat": {"type": "string", "enum": ["never", "daily", "weekdays"]}}, "required": ["hour", "minute", "repeat"]}}


def test_a_single_call_grammar_ends_after_the_first_block(shop_catalog):
    pytest.importorskip("llguidance")
    from tooltune.runtime.constrained import tool_call_grammar

    # A named tool_choice: SmolLM2 opened a second block under the parallel grammar and ran into
    # max_tokens, so the served turn had no parseable call at all.
    grammar = tool_call_grammar(HERMES, [shop_catalog.get("get_orders")], allow_text=False, parallel=False)
    one = HERMES.render([ToolCall("get_orders", {"fulfillment_state": "shipped"})])
    assert _accepts(grammar, one)
    assert not _accepts(grammar, one + "\n" + one)
    assert not _accepts(grammar, "Sure.")


def test_constrained_outputs_always_parse_into_valid_calls(tiny_loaded, shop_catalog):
    pytest.importorskip("llguidance")
    from tooltune.runtime.constrained import tool_call_grammar
    from tooltune.tools.catalog import Tool

    # Bounded parameters (enum, integer ranges): a random model under greedy decoding would
    # otherwise repeat one character inside a free string until max_new_tokens.
    tools = [Tool.from_dict(ALARM), shop_catalog.get("get_payment_status")]
    prompts = [tiny_loaded.render([{"role": "user", "content": f"Wake me at {n} please."}], tools) for n in range(3)]
    forced = tool_call_grammar(HERMES, tools[:1], allow_text=False)  # the random model would otherwise just chat
    generator = Generator(tiny_loaded, max_new_tokens=120, batch_size=3, constrained=True)
    for generation in generator.generate_prompts(prompts, [forced] * 3):
        parsed = HERMES.parse(generation.text)
        assert parsed.has_calls and not generation.truncated, generation.text
        for call in parsed.calls:
            jsonschema.validate(call.arguments, ALARM["parameters"])
    chatty = Generator(tiny_loaded, max_new_tokens=24, batch_size=2, constrained=True)
    free = chatty.generate([([{"role": "user", "content": "hi"}], tools)] * 2)  # text allowed: may abstain
    assert all(HERMES.parse(g.text).kind.value != "malformed" for g in free)


def test_a_constrained_output_cut_by_max_new_tokens_is_reported_truncated(tiny_loaded, shop_catalog):
    pytest.importorskip("llguidance")
    from tooltune.runtime.constrained import tool_call_grammar

    tools = [shop_catalog.get("create_payment")]  # free strings: the random model never closes invoice_id
    prompt = tiny_loaded.render([{"role": "user", "content": "Charge order 1 please."}], tools)
    grammar = tool_call_grammar(HERMES, tools, allow_text=False)
    [generation] = Generator(tiny_loaded, max_new_tokens=40, constrained=True).generate_prompts([prompt], [grammar])
    assert generation.truncated and generation.new_tokens == 40
    assert generation.text.startswith('<tool_call>\n{"name": "create_payment", "arguments": {"amount": ')
