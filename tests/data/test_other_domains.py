"""Other domains' tools offered beside requests they cannot serve (``synth.other_domains``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import anyio
import pytest

import tooltune
from tooltune.data.curated import load_curated
from tooltune.data.examples import Behavior, Example
from tooltune.data.quality import example_problems
from tooltune.data.synth import Mix, SynthConfig, generate
from tooltune.demo import build_server
from tooltune.errors import ConfigError
from tooltune.tools.catalog import Tool, ToolCatalog
from tooltune.tools.mcp_client import MCPClient

CURATED = Path(tooltune.__file__).parent / "demo" / "curated"
REPO = Path(__file__).resolve().parents[2]
NO_CALL_HEAVY = Mix(calls=0.5, parallel=0, multi_step=0, clarify=0, no_call=0.5)


async def _shop_tools(data_dir: Path) -> list[Tool]:
    async with MCPClient.in_process(build_server("shop", data_dir)) as client:
        return [Tool.from_dict({"name": t.name, "description": t.description or "", "parameters": t.input_schema,
                                "service": "shop"}) for t in await client.list_tools()]


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    catalog = ToolCatalog(tools=anyio.run(_shop_tools, tmp_path_factory.mktemp("shop")))
    return catalog, load_curated(CURATED / "shop.yaml", catalog)


@pytest.fixture(scope="module")
def other() -> list[Tool]:
    return list(ToolCatalog.load(CURATED / "other-domains.json"))


def _generate(shop, other, share: float, n: int = 400):
    catalog, curated = shop
    config = SynthConfig(n=n, seed=3, mix=NO_CALL_HEAVY, other_domains=share)
    return generate(catalog, config, curated=curated.examples, vocabulary=curated.vocabulary, other_domains=other)


def test_other_domain_examples_offer_only_foreign_tools_and_call_nothing(shop, other):
    catalog, curated = shop
    result = _generate(shop, other, 0.5)
    foreign = [e for e in result.examples if e.meta.get("no_call_kind") == "other_domain"]
    no_call = [e for e in result.examples if e.behavior is Behavior.NO_CALL]
    # The counter also counts drafts the dedup pass then dropped.
    assert result.stats["no_call_kinds"]["other_domain"] >= len(foreign)
    assert 0.35 * len(no_call) < len(foreign) < 0.65 * len(no_call)
    names = {t.name for t in other}
    for e in foreign:
        assert e.behavior is Behavior.NO_CALL and not e.calls and e.answer
        assert 1 <= len(e.tools) <= 4 and set(e.tools) <= names and not set(e.tools) & set(catalog.names)
        # Carried inline (they are in no catalog), and rendered from there.
        assert [t.name for t in e.offered_tools(catalog)] == e.tools
        assert example_problems(e, catalog, curated.vocabulary) == [], e.user_text
        assert Example.model_validate_json(e.model_dump_json()) == e
    # Chit-chat only, under the chit-chat template ids (so a phrasing held out for test stays out).
    assert all(e.meta["template_id"].startswith("chitchat/") and "withheld_tool" not in e.meta for e in foreign)
    assert len({e.user_text for e in foreign}) > 20


def test_no_share_keeps_every_example_as_it_was(shop, other):
    # The extra draw happens only when the share is above 0: a config without other domains
    # generates the same examples whether or not the tools are passed.
    catalog, curated = shop
    config = SynthConfig(n=200, seed=3, mix=NO_CALL_HEAVY)
    plain = generate(catalog, config, curated=curated.examples, vocabulary=curated.vocabulary)
    with_tools = generate(catalog, config, curated=curated.examples, vocabulary=curated.vocabulary, other_domains=other)
    assert [e.id for e in plain.examples] == [e.id for e in with_tools.examples]


def test_a_share_without_tools_or_a_name_clash_is_refused(shop, other):
    catalog, _ = shop
    with pytest.raises(ConfigError, match="other_domain_tools"):
        generate(catalog, SynthConfig(n=10, other_domains=0.3))
    clash = Tool(name="create_payment", description="not the shop's")
    with pytest.raises(ConfigError, match=r"\['create_payment'\].*names of catalog tools"):
        generate(catalog, SynthConfig(n=10, other_domains=0.3), other_domains=[*other, clash])


def test_the_committed_file_is_what_the_script_writes():
    spec = importlib.util.spec_from_file_location("other_domains", REPO / "scripts" / "other_domains.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = ToolCatalog.load(CURATED / "other-domains.json")
    assert committed.to_dict() == module.build().to_dict(), "run: .venv/bin/python scripts/other_domains.py"
