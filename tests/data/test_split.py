"""Split rules (zero-shot tools, time holdout, multi-step, phrasing templates, hash buckets),
stability as the dataset grows, and the contamination check."""

from __future__ import annotations

import random
from datetime import date, datetime, timezone

import pytest

from tooltune.data.config import DataConfig
from tooltune.data.examples import Behavior, Clarification, Example, ExpectedCall, Provenance, Source
from tooltune.data.quality import LexicalEmbedder
from tooltune.data.split import SPLITS, check_contamination, hold_out_tools, split_by_id, split_examples, template_key
from tooltune.errors import DataError
from tooltune.tools.catalog import ToolCatalog

TOOLS = [f"tool_{i}" for i in range(10)]
CATALOG = ToolCatalog.from_dict({"tools": [
    {"name": n, "description": f"Tool {n}", "parameters": {
        "type": "object", "properties": {"q": {"type": "string"}, f"p_{n}": {"type": "string"}}, "required": ["q"]}}
    for n in TOOLS]})
OLD = datetime(2024, 1, 1, tzinfo=timezone.utc)
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
         "quebec romeo sierra tango uniform victor whiskey xray yankee zulu amber basil cedar dune").split()


def words(seed: str, n: int) -> str:
    return " ".join(random.Random(seed).sample(WORDS, n))


def make(tool: str, template: int, row: int, *, created: datetime = OLD, tools: list[str] | None = None,
         sequence: bool = False) -> Example:
    calls = [ExpectedCall(name=tool, arguments={"q": f"v{row}"})]
    if sequence:
        calls.append(ExpectedCall(name=tool, arguments={"q": "{prev.id}"}))
    return Example(
        messages=[{"role": "user", "content": f"{words(f'{tool}{template}{sequence}', 4)} asks {words(str(row), 3)}"}],
        tools=tools or [tool, TOOLS[(TOOLS.index(tool) + 1) % 10]],
        behavior=Behavior.SEQUENCE if sequence else Behavior.CALLS, calls=calls,
        provenance=Provenance(source=Source.SYNTHETIC, created_at=created),
        meta={"template_id": f"{tool}-{'seq' if sequence else 't'}{template}"})


def dataset(rows: range = range(8), templates: range = range(12)) -> list[Example]:
    out = [make(t, k, r) for t in TOOLS for k in templates for r in rows]
    out += [make(t, k, r, sequence=True) for t in TOOLS[:4] for k in range(3) for r in rows]
    return out


def by_id(result) -> dict[str, str]:
    return {e.id: name for name, items in result.splits.items() for e in items}


@pytest.fixture(scope="module")
def result():
    return split_examples(dataset(), CATALOG, DataConfig(seed=1))


def test_every_example_lands_in_exactly_one_split(result):
    ids = [e.id for items in result.splits.values() for e in items]
    assert len(ids) == len(set(ids)) == len(dataset())
    assert all(result.sizes[name] > 0 for name in SPLITS)


def test_held_out_tools_never_reach_train_or_val(result):
    held = set(result.held_out_tools)
    assert len(held) == 2  # 20% of 10
    for name in ("train", "val"):
        for e in result.splits[name]:
            assert not held & {c.name for c in e.calls} and not held & set(e.tools), name
    assert all(held & {c.name for c in e.calls} for e in result.splits["test_zero_shot"])
    assert result.stripped > 0  # distractors removed, not whole examples


def test_explicit_held_out_tools_and_unknown_names():
    assert hold_out_tools(TOOLS, 0.2, 0, ["tool_3"]) == ["tool_3"]
    with pytest.raises(DataError, match="'nope' not in the catalog"):
        hold_out_tools(TOOLS, 0.2, 0, ["nope"])
    assert hold_out_tools(["only"], 0.2, 0) == []


def test_phrasing_templates_never_in_train(result):
    train = {template_key(e) for e in result.splits["train"] + result.splits["val"]}
    test = {template_key(e) for e in result.splits["test_phrasing"]}
    assert test and not train & test
    tools_tested = {e.calls[0].name for e in result.splits["test_phrasing"]}
    assert tools_tested == set(TOOLS) - set(result.held_out_tools)  # every tool with 3+ templates


def test_multistep_templates_split_between_test_and_train(result):
    test = {template_key(e) for e in result.splits["test_multistep"]}
    trained = {template_key(e) for e in result.splits["train"] if e.behavior is Behavior.SEQUENCE}
    assert test and trained and not test & trained
    assert all(e.behavior is Behavior.SEQUENCE for e in result.splits["test_multistep"])


def test_pool_proportions_are_close_to_60_10_10_20():
    result = split_examples(dataset(rows=range(30)), CATALOG, DataConfig(seed=1, zero_shot_fraction=0.0, multistep_test_fraction=0))
    total = sum(result.sizes.values())
    share = {k: v / total for k, v in result.sizes.items()}
    assert share["train"] == pytest.approx(0.6, abs=0.06) and share["val"] == pytest.approx(0.1, abs=0.03)
    assert share["holdout"] == pytest.approx(0.2, abs=0.04) and share["test_phrasing"] == pytest.approx(0.1, abs=0.06)


def test_splits_are_stable_when_the_dataset_grows():
    before = by_id(split_examples(dataset(rows=range(6)), CATALOG, DataConfig(seed=1)))
    grown = dataset(rows=range(10)) + [make(t, k, r) for t in TOOLS for k in range(12, 15) for r in range(6)]
    after = by_id(split_examples(grown, CATALOG, DataConfig(seed=1)))
    assert {i: after[i] for i in before} == before
    assert by_id(split_examples(dataset(rows=range(6)), CATALOG, DataConfig(seed=2))) != before  # the seed matters


def test_examples_after_holdout_after_go_to_holdout():
    new = datetime(2024, 6, 2, tzinfo=timezone.utc)
    examples = dataset() + [make(t, 99, 1, created=new) for t in TOOLS]
    result = split_examples(examples, CATALOG, DataConfig(seed=1, holdout_after=date(2024, 6, 1)))
    held = set(result.held_out_tools)
    fresh = [e for e in examples if e.provenance.created_at == new]
    where = by_id(result)
    assert {where[e.id] for e in fresh if e.calls[0].name not in held} == {"holdout"}
    assert {where[e.id] for e in fresh if e.calls[0].name in held} == {"test_zero_shot"}


def test_clarify_and_no_call_only_about_held_out_tools_go_to_zero_shot():
    prov = Provenance(source=Source.CURATED)
    clarify = Example(messages=[{"role": "user", "content": "do the thing"}], tools=["tool_3", "tool_4"],
                      behavior=Behavior.CLARIFY, clarify=Clarification(question="Which?", missing=["p_tool_3"]), provenance=prov)
    no_call = Example(messages=[{"role": "user", "content": "hi"}], tools=["tool_3"], behavior=Behavior.NO_CALL, provenance=prov)
    withheld = Example(messages=[{"role": "user", "content": "do tool 3 things"}], tools=["tool_4"], behavior=Behavior.NO_CALL,
                       provenance=prov, meta={"withheld_tool": "tool_3"})
    result = split_examples([clarify, no_call, withheld], CATALOG, DataConfig(held_out_tools=["tool_3"]))
    assert result.splits["test_zero_shot"] == [clarify, no_call, withheld]


# ---------------------------------------------------------------- contamination


def planted(result, copy_into: str, text_change=lambda t: t):
    splits = {k: list(v) for k, v in result.splits.items()}
    source = splits["train"][0]
    twin = source.model_copy(update={"messages": [{"role": "user", "content": text_change(source.user_text)}],
                                     "meta": {"template_id": "planted"}})
    splits[copy_into].append(twin)
    return splits, twin


def test_clean_splits_have_no_contamination(result):
    cleaned, report = check_contamination(result.splits, LexicalEmbedder(), threshold=0.95)
    assert sum(report.exact.values()) == sum(report.near.values()) == sum(report.removed.values()) == 0
    assert cleaned == result.splits


def test_planted_exact_duplicate_fails_with_numbers_and_fix(result):
    splits, _ = planted(result, "test_phrasing", lambda t: t.upper() + "!")
    with pytest.raises(DataError, match=r"test_phrasing: 1 of \d+ examples repeat a train example exactly \(allowed: 0\)"):
        check_contamination(splits, None)
    cleaned, report = check_contamination(splits, None, max_exact=1)
    assert report.exact["test_phrasing"] == report.removed["test_phrasing"] == 1
    assert len(cleaned["test_phrasing"]) == len(splits["test_phrasing"]) - 1


def test_planted_near_duplicate_is_removed_below_and_fails_above_the_share(result):
    splits, twin = planted(result, "holdout", lambda t: t.replace("asks", "askss"))
    cleaned, report = check_contamination(splits, LexicalEmbedder(), threshold=0.9, max_near_fraction=0.05)
    assert report.near["holdout"] == 1 and twin not in cleaned["holdout"] and report.sample[0]["split"] == "holdout"
    with pytest.raises(DataError, match=r"holdout: 1 of \d+ examples \(\d+\.\d%\) near-duplicate train"):
        check_contamination(splits, LexicalEmbedder(), threshold=0.9, max_near_fraction=0.0)


def test_split_by_id_keeps_each_example_on_its_side_as_the_pool_grows():
    # A collection's training data (tooltune collect): train / val by the id alone, no seed.
    pool = [make(tool, t, r) for tool in TOOLS for t in range(3) for r in range(10)]
    first = split_by_id(pool[:150], 0.2)
    grown = split_by_id(pool, 0.2)
    assert {e.id for e in first["val"]} <= {e.id for e in grown["val"]}
    assert {e.id for e in first["train"]} <= {e.id for e in grown["train"]}
    assert 0.12 < len(grown["val"]) / len(pool) < 0.28
    assert sorted(e.id for e in grown["train"] + grown["val"]) == sorted(e.id for e in pool)


def test_split_by_id_leaves_val_one_example_of_a_small_pool():
    two = [make("tool_0", 0, 1), make("tool_1", 0, 2)]
    splits = split_by_id(two, 0.01)
    assert [e.id for e in splits["val"]] == [min(e.id for e in two)] and len(splits["train"]) == 1
    assert split_by_id(two, 0.0) == {"train": two, "val": []}  # no val asked for: none made
