"""`tooltune plan`: costs and break-even volumes worked out by hand from a fixed price table and
fixed token counts; token counts measured through render_chat with the tiny test base's tokenizer."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tooltune.data.examples import Behavior, Example, ExpectedCall, Provenance, Source, target_messages, write_jsonl
from tooltune.errors import ConfigError
from tooltune.formats.chat import render_chat
from tooltune.ops.plan import TokenCounts, load_tokenizer, measure_tokens, plan
from tooltune.ops.prices import DEFAULT_PRICES, load_prices
from tooltune.tools.catalog import ToolCatalog

SHOP = Path(__file__).parents[1] / "fixtures" / "catalogs" / "shop.json"

PRICES = {
    "source": "test prices", "as_of": "2026-01", "currency": "USD",
    "providers": {
        "acme": {"model": "acme-1", "prompt": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
                 "fine_tuning": {"training_per_mtok": 10.0, "input_per_mtok": 2.0, "output_per_mtok": 4.0, "hosting_per_month": 10.0}},
        "plain": {"model": "plain-1", "prompt": {"input_per_mtok": 0.5, "output_per_mtok": 0.5}},
    },
    # 1,100 tokens per request at 1,100 tokens/s: one GPU-second per request.
    "local": {"gpu_per_hour": 2.0, "tokens_per_second": 1100, "min_hours_per_month": 100, "training_hours": 6},
    "assumptions": {"epochs": 2, "few_shot_examples": 2, "amortize_months": 10,
                    "prompt_only_accuracy": 0.8, "fine_tuned_accuracy": 0.95, "local_lora_accuracy": 0.9},
}
TOKENS = TokenCounts(tokenizer="fixed", requests=1, input=1000, input_few_shot=3000, output=100, context_tokens=2000,
                     few_shot_conversations=2, train_examples=1000, train_tokens=1_000_000)


@pytest.fixture
def prices(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text(yaml.safe_dump(PRICES))
    return load_prices(path)


def test_costs_and_break_even_volumes_match_the_hand_computation(prices):
    result = plan(TOKENS, prices, 100_000)
    costs = {c.path: c for c in result.costs}
    # prompt-only: (3000 × $1 + 100 × $2) / 1M = $0.0032 per request.
    assert costs["prompt-only"].monthly == pytest.approx(320.0)
    # fine-tuning: 1M tokens × 2 epochs × $10/M = $20 once, /10 months + $10 hosting; (1000 × 2 + 100 × 4) / 1M per request.
    assert costs["cloud-fine-tuning"].one_time == pytest.approx(20.0)
    assert costs["cloud-fine-tuning"].monthly == pytest.approx(12.0 + 0.0024 * 100_000)
    # local: 100,000 GPU-seconds = 27.8 h < the 100 h minimum → 100 h × $2 + 6 h × $2 / 10 months.
    assert costs["local-lora"].monthly == pytest.approx(201.2)
    assert costs["local-lora"].per_request == 0.0  # inside the paid minimum
    # break-even: 12 + 0.0024 N = 0.0032 N → 15,000; local's flat 201.2 = 0.0032 N → 62,875.
    assert costs["cloud-fine-tuning"].break_even_requests == pytest.approx(15_000)
    assert costs["local-lora"].break_even_requests == pytest.approx(62_875)
    assert result.recommendation == "local-lora" and result.provider == "acme"

    assert plan(TOKENS, prices, 10_000).recommendation == "prompt-only"  # 32.0 vs 36.0 vs 201.2
    assert plan(TOKENS, prices, 1_000_000).costs[2].monthly == pytest.approx(1.2 + 1_000_000 / 3600 * 2.0)  # past the minimum


def test_privacy_and_accuracy_constraints(prices):
    # 0.92 required: local (0.90) and prompt-only (0.80) are ruled out by the table's assumptions.
    strict = plan(TOKENS, prices, 100_000, accuracy=0.92)
    assert strict.recommendation == "cloud-fine-tuning"
    assert "below the required 92%" in next(c for c in strict.costs if c.path == "local-lora").reason
    private = plan(TOKENS, prices, 10_000, privacy=True)
    assert private.recommendation == "local-lora"
    assert all(not c.eligible for c in private.costs if c.path != "local-lora")
    impossible = plan(TOKENS, prices, 10_000, privacy=True, accuracy=0.99)
    assert impossible.recommendation == "local-lora" and "no path meets" in impossible.why


def test_provider_choice_and_errors(prices):
    no_ft = plan(TOKENS, prices, 1000, provider="plain")
    ft = next(c for c in no_ft.costs if c.path == "cloud-fine-tuning")
    assert not ft.eligible and "no fine_tuning prices" in ft.reason
    with pytest.raises(ConfigError, match="known: acme, plain"):
        plan(TOKENS, prices, 1000, provider="nope")
    with pytest.raises(ConfigError, match="--accuracy"):
        plan(TOKENS, prices, 1000, accuracy=95)


def test_price_table_errors_name_the_file_and_field(tmp_path):
    bad = {**PRICES, "local": {**PRICES["local"], "tokens_per_second": 0}}
    bad["providers"] = {"acme": {**PRICES["providers"]["acme"], "prompt": {"input_per_mtok": -1, "output_per_mtok": 1}}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(ConfigError) as err:
        load_prices(path)
    assert re.search(rf"{re.escape(str(path))}:\d+: providers.acme.prompt.input_per_mtok", str(err.value))
    assert re.search(rf"{re.escape(str(path))}:\d+: local.tokens_per_second", str(err.value))
    packaged = load_prices()
    assert "example prices, edit them" in packaged.source and DEFAULT_PRICES.exists()


def _example(text: str, call: ExpectedCall | None = None) -> Example:
    return Example(service="shop", messages=[{"role": "user", "content": text}],
                   tools=["create_payment", "get_orders"], behavior=Behavior.CALLS if call else Behavior.NO_CALL,
                   calls=[call] if call else [], answer=None if call else "I can't do that.",
                   provenance=Provenance(source=Source.CURATED))


@pytest.fixture
def data_dir(tmp_path):
    data = tmp_path / "data"
    ToolCatalog.load(SHOP).save(data / "catalog.json")
    write_jsonl([
        _example("Charge cus_0001 $50 for inv_1043",
                 ExpectedCall(name="create_payment", arguments={"amount": 5000, "invoice_id": "inv_1043", "customer_id": "cus_0001"})),
        _example("Show my shipped orders", ExpectedCall(name="get_orders", arguments={"customer_id": "cus_0002", "fulfillment_state": "shipped"})),
    ], data / "train.jsonl")
    write_jsonl([_example("What's the weather?")], data / "test_phrasing.jsonl")
    return data


def test_token_counts_are_measured_through_render_chat(data_dir, tmp_path, tiny_base_dir):
    tokenizer = load_tokenizer(str(tiny_base_dir))
    catalog = ToolCatalog.load(SHOP)
    counts = measure_tokens(data_dir, tokenizer, tokenizer_name=str(tiny_base_dir), few_shot_examples=1)

    def n(messages, example, generation):
        text = render_chat(tokenizer, messages, example.offered_tools(catalog), add_generation_prompt=generation)
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    from tooltune.data.examples import read_jsonl

    examples = [*read_jsonl(data_dir / "train.jsonl"), *read_jsonl(data_dir / "test_phrasing.jsonl")]
    prompts = [n(e.messages, e, True) for e in examples]
    outputs = [n(target_messages(e), e, False) - p for e, p in zip(examples, prompts)]
    assert counts.requests == 3 and counts.train_examples == 2
    assert counts.input == pytest.approx(sum(prompts) / 3)
    assert counts.output == pytest.approx(sum(outputs) / 3)
    train = examples[:2]
    assert counts.train_tokens == round(sum(n(target_messages(e), e, False) for e in train) / 2 * 2)
    assert counts.few_shot_conversations == 1 and counts.context_tokens > 100  # the system prompt plus one conversation
    assert counts.input_few_shot > counts.input

    # A built prompt model's own prefix is what prompt-only would send.
    prefix = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    (tmp_path / "pm").mkdir()
    (tmp_path / "pm" / "prompt_model.json").write_text(json.dumps(
        {"kind": "prompt", "base_model": str(tiny_base_dir), "system": "Be brief.", "few_shot": prefix[1:]}))
    with_model = measure_tokens(data_dir, tokenizer, tokenizer_name=str(tiny_base_dir), prompt_model=tmp_path / "pm")
    assert with_model.input_few_shot == pytest.approx(sum(n(prefix + e.messages, e, True) for e in examples) / 3)
    assert with_model.few_shot_conversations == 1


def test_cli_plan_prints_the_recommendation_and_json(data_dir, tmp_path, tiny_base_dir):
    from typer.testing import CliRunner

    from tooltune.cli import app

    prices_file = tmp_path / "prices.yaml"
    prices_file.write_text(yaml.safe_dump(PRICES))
    args = ["plan", "--data", str(data_dir), "--requests-per-month", "100000", "--tokenizer", str(tiny_base_dir), "--prices", str(prices_file)]
    runner = CliRunner()
    out = runner.invoke(app, [*args, "--json"])
    assert out.exit_code == 0, f"{out.output}\n{out.exception!r}"
    result = json.loads(out.output)
    tokens = TokenCounts.model_validate(result["tokens"])
    assert tokens.requests == 3 and tokens.tokenizer == str(tiny_base_dir)
    expected = plan(tokens, load_prices(prices_file), 100_000)
    assert result["recommendation"] == expected.recommendation
    assert [c["monthly"] for c in result["costs"]] == pytest.approx([c.monthly for c in expected.costs])
    shown = runner.invoke(app, [*args, "--privacy"], env={"COLUMNS": "220"})
    assert shown.exit_code == 0, shown.output
    assert "Recommendation: local-lora" in shown.output and "test prices" in shown.output and "break-even" in shown.output
