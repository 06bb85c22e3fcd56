"""The prompt backend on the tiny random Llama: few-shot conversations cover every called tool, add
training examples of the kinds the base model fails on val, fit the token budget, and the
prompt-only model directory loads in evaluation exactly as written."""

from __future__ import annotations

import json

import pytest

from tests.train.conftest import TRAIN_DATA
from tooltune.data.examples import read_jsonl
from tooltune.data.io.openai import line_problem
from tooltune.data.vocabulary import DomainVocabulary, Term
from tooltune.errors import TrainError
from tooltune.formats.base import get_format
from tooltune.formats.chat import render_chat
from tooltune.train import TrainConfig, run_training
from tooltune.train.fewshot import PLACEHOLDER_RESULT, build_prompt_model, few_shot_messages, system_prompt

TRAIN = list(read_jsonl(TRAIN_DATA / "train.jsonl"))
VAL = list(read_jsonl(TRAIN_DATA / "val.jsonl"))
CALLED = {"get_weather", "get_customer_by_name", "get_latest_order", "create_payment"}


def prompt_config(tiny_base, tmp_path, **prompt) -> TrainConfig:
    return TrainConfig(backend="prompt", base_model=str(tiny_base), data_dir=TRAIN_DATA, output_dir=tmp_path / "run",
                       prompt={"max_new_tokens": 8, **prompt})


def called_tools(few_shot):
    return {tc["function"]["name"] for m in few_shot for tc in m.get("tool_calls") or []}


def prompt_tokens(tokenizer, prompt_model):
    text = render_chat(tokenizer, [{"role": "system", "content": prompt_model["system"]}, *prompt_model["few_shot"]])
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def test_the_prompt_model_covers_every_tool_fits_the_budget_and_loads_for_eval(tiny_base, tmp_path):
    from tooltune.runtime.model import load_model

    config = prompt_config(tiny_base, tmp_path, rules=["amounts are in cents"], max_prompt_tokens=1500)
    result = build_prompt_model(config, progress=False)  # the random base model answers val.jsonl

    spec = json.loads((result.run_dir / "prompt_model.json").read_text())
    assert set(spec) == {"kind", "base_model", "system", "few_shot"} and spec["kind"] == "prompt"
    assert spec["base_model"] == str(tiny_base) and "- amounts are in cents" in spec["system"]
    assert called_tools(spec["few_shot"]) == CALLED and result.uncovered_tools == []
    # OpenAI-shaped: arguments as JSON strings, every call answered by a tool message (a provider accepts it).
    assert line_problem(json.dumps({"messages": spec["few_shot"]})) is None
    val_texts = {e.user_text for e in VAL}
    assert not val_texts & {m.get("content") for m in spec["few_shot"]}, "val examples must never enter the prompt"

    loaded = load_model(result.run_dir)
    assert loaded.kind == "prompt" and loaded.few_shot == spec["few_shot"]
    tokens = prompt_tokens(loaded.tokenizer, spec)
    assert tokens == result.prompt_tokens <= 1500
    conversation = [{"role": "user", "content": "Weather in Oslo?"}]
    assert loaded.render(conversation, None).startswith(render_chat(loaded.tokenizer, loaded.messages_for([])))

    m = json.loads(result.manifest_path.read_text())
    assert m["backend"] == "prompt" and m["prompt"]["tokens"] == tokens and m["prompt"]["budget"] == 1500
    assert m["val_with_coverage_prompt"]["total"] == 3 == result.val_total
    assert [s["reason"].split()[0] for s in m["few_shot"]][:2] == ["covers", "covers"]
    assert m["base_model"]["local"] and m["catalog"]["hash"]


def test_failures_add_training_examples_of_the_kind_the_base_model_fails(tiny_base, tmp_path):
    by_text = {e.user_text: e for e in VAL}
    hermes = get_format("hermes")
    prompts = []

    def predict(prompt, requests):
        # Right on get_weather and on the no-call example; get_customer_by_name is always missed.
        prompts.append(prompt)
        out = []
        for messages, _tools in requests:
            example = by_text[messages[-1]["content"]]
            right = example.calls and example.calls[0].name == "get_weather"
            out.append(hermes.render([c.to_call() for c in example.calls]) if right else "It is sunny.")
        return out

    result = build_prompt_model(prompt_config(tiny_base, tmp_path), progress=False, predict=predict)
    assert result.val_correct == 2 and result.val_total == 3
    m = json.loads(result.manifest_path.read_text())
    assert m["val_with_coverage_prompt"]["failures"] == {"simple/get_customer_by_name": 1}
    reasons = [s["reason"] for s in m["few_shot"]]
    assert reasons[-1] == "base model fails 1 val simple/get_customer_by_name example(s)"
    added = next(e for e in TRAIN if e.id == m["few_shot"][-1]["example_id"])
    assert added.calls[0].name == "get_customer_by_name"  # no simple one in train: same tool, other category
    # The model was asked with the coverage prompt, which the final prompt extends.
    final = json.loads((result.run_dir / "prompt_model.json").read_text())
    assert len(prompts) == 1 and final["few_shot"][:len(prompts[0].few_shot)] == prompts[0].few_shot
    assert len(final["few_shot"]) > len(prompts[0].few_shot)


def test_the_token_budget_limits_the_examples_and_is_checked(tiny_base, tmp_path, tiny_tokenizer):
    system_only = len(tiny_tokenizer(render_chat(tiny_tokenizer, [{"role": "system", "content": system_prompt()}]),
                                     add_special_tokens=False)["input_ids"])
    budget = system_only + 200  # room for a short call conversation, not the long sequence
    result = build_prompt_model(prompt_config(tiny_base, tmp_path, max_prompt_tokens=budget, mine_failures=False),
                                progress=False)
    spec = json.loads((result.run_dir / "prompt_model.json").read_text())
    assert 0 < result.examples and result.prompt_tokens == prompt_tokens(tiny_tokenizer, spec) <= budget
    assert result.uncovered_tools and set(result.uncovered_tools) | called_tools(spec["few_shot"]) == CALLED
    assert result.val_total is None

    with pytest.raises(TrainError, match=rf"prompt.max_prompt_tokens: the system prompt alone is {system_only} "
                                         r"tokens, more than the budget of 50\."):
        build_prompt_model(prompt_config(tiny_base, tmp_path / "small", max_prompt_tokens=50), progress=False)
    with pytest.raises(TrainError, match="already holds a run"):
        build_prompt_model(prompt_config(tiny_base, tmp_path, mine_failures=False), progress=False)

    capped = run_training(prompt_config(tiny_base, tmp_path / "capped", max_examples=1, mine_failures=False),
                          progress=False)  # dispatches on backend: prompt
    assert capped.examples == 1 and capped.summary()["backend"] == "prompt"
    assert json.loads(json.dumps(capped.summary()))["prompt_tokens"] == capped.prompt_tokens


def test_system_prompt_quotes_the_domain_vocabulary():
    vocabulary = DomainVocabulary(rules=["orders ship from Berlin"], cents=["create_payment.amount"], terms=[
        Term(says=["pending", "not shipped yet"], param="get_orders.fulfillment_state", value="awaiting_shipment")])
    text = system_prompt(["amounts are in cents"], vocabulary)
    domain = text[text.index("Domain rules:"):].splitlines()
    assert domain[1:5] == [
        "- amounts are in cents", "- orders ship from Berlin",
        "- create_payment.amount is in cents: $12.50 is written 1250.",
        '- "pending" or "not shipped yet" means get_orders.fulfillment_state = "awaiting_shipment".',
    ]
    assert "Domain rules" not in system_prompt()


def test_a_sequence_becomes_calls_answered_by_their_recorded_results():
    sequence = next(e for e in TRAIN if e.behavior.value == "sequence")
    messages = few_shot_messages(sequence, shot=3)
    roles = [m["role"] for m in messages]
    assert roles == ["user", "assistant", "tool", "assistant", "tool", "assistant", "tool", "assistant"]
    calls = [m["tool_calls"][0] for m in messages if m.get("tool_calls")]
    answers = [m for m in messages if m["role"] == "tool"]
    assert [a["tool_call_id"] for a in answers] == [c["id"] for c in calls]
    assert json.loads(calls[2]["function"]["arguments"]) == {"amount": 5000, "invoice_id": "inv_1001",
                                                             "customer_id": "cus_0001"}  # references resolved
    assert json.loads(answers[0]["content"]) == {"id": "cus_0001", "name": "John Smith"}

    parallel = next(e for e in TRAIN if len(e.calls) == 2)
    messages = few_shot_messages(parallel)
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool"]
    assert all(m["content"] == PLACEHOLDER_RESULT for m in messages[2:])
    unexecuted = sequence.model_copy(update={"step_results": []})
    assert few_shot_messages(unexecuted) is None
