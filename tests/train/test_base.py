"""The tiny test base's recipe (tests/fixtures/tiny_base): tool universe, corpus, tokenizer, template, and a
seconds-long build."""

from __future__ import annotations

import json
import math

import pytest

from tests.conftest import FIXTURES
from tests.fixtures.tiny_base import recipe as base
from tests.fixtures.tiny_base.chat import BASE_TEMPLATE, base_tokenizer
from tests.fixtures.tiny_base.recipe import TINY_BASE_DIR, BaseBuildConfig, base_config_markdown, base_corpus, build_base
from tests.fixtures.tiny_base.tool_universe import DOMAINS, tool_universe
from tooltune.formats.base import get_format
from tooltune.formats.chat import assistant_message, chat_setup, render_chat
from tooltune.tools.call import ToolCall
from tooltune.tools.catalog import Tool
from tooltune.train.sft import cpu_compact_lm_head

DOCS = FIXTURES / "tiny_base" / "README.md"

DEMO_TOOL_NAMES = {t["name"] for t in json.loads((FIXTURES / "catalogs" / "shop.json").read_text())["tools"]} | {
    "create_event", "list_events", "cancel_event", "find_free_slot", "list_files", "read_file", "write_file",
    "search_files", "delete_file", "get_current_weather", "get_forecast", "get_air_quality"}

ORDER_TOOL = Tool(name="create_order", description="Create an order. Charges the card on file.\nMore text.", parameters={
    "type": "object",
    "properties": {"item": {"type": "string"}, "quantity": {"type": "integer"},
                   "priority": {"type": "string", "enum": ["low", "normal", "high"]},
                   "due": {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
                   "tags": {"type": "array", "items": {"type": "string"}}},
    "required": ["item", "quantity"]})


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A micro base model built end to end in seconds: 50 steps on a few hundred examples."""
    config = BaseBuildConfig(size="micro", n_examples=300, max_steps=50, batch_size=2, max_length=256, eval_examples=4,
                             threads=1, output_dir=tmp_path_factory.mktemp("base_model"))
    return config, build_base(config)


# ---------------------------------------------------------------- tool universe and corpus


def test_universe_is_seeded_broad_and_never_uses_the_demo_tools():
    catalog = tool_universe(0)
    assert catalog.to_dict() == tool_universe(0).to_dict()
    assert catalog.names != tool_universe(1).names  # the seed picks tools, names, params
    assert not DEMO_TOOL_NAMES & set(catalog.names)
    assert not any(noun in name for name in catalog.names for noun in ("payment", "order", "customer"))
    per_service = {s: len(catalog.for_service(s)) for s in catalog.services}
    assert len(per_service) >= 30 and len(DOMAINS) == len(per_service)
    assert all(5 <= n <= 10 for n in per_service.values()), per_service
    params = {name: schema for tool in catalog for name, schema in tool.properties.items()}
    assert any(n.endswith("_cents") and s["type"] == "integer" for n, s in params.items())
    assert any(n.endswith("_minutes") for n in params)
    assert any("enum" in s for s in params.values())
    assert {"date", "date-time", "email"} <= {s.get("format") for s in params.values()}
    assert any(t.required and set(t.properties) - set(t.required) for t in catalog)  # required and optional


def test_corpus_is_deterministic_and_rich_in_no_call_clarify_and_parallel():
    first, second = base_corpus(0, 400, 5), base_corpus(0, 400, 5)
    assert {k: [e.id for e in v] for k, v in first.splits.items()} == {k: [e.id for e in v] for k, v in second.splits.items()}
    train = first.splits["train"]
    behaviors = {e.behavior.value for e in train}
    assert {"calls", "no_call", "clarify"} <= behaviors
    assert any(len(e.calls) > 1 for e in train)
    assert all(1 <= len(e.tools) <= 6 for e in train)
    held = set(first.held_out_tools)
    assert held and not any(held & set(e.tools) for e in train + first.splits["val"])
    assert all(any(c.name in held for c in e.calls) for e in first.splits["unseen_tools"])


# ---------------------------------------------------------------- tokenizer and template


def test_template_is_detected_as_pythonic_and_lists_compact_signatures():
    tokenizer = base_tokenizer()
    setup = chat_setup(tokenizer)
    assert (setup.builtin, setup.call_format.name, setup.arguments_style) == (False, "pythonic", "dict")
    call = ToolCall("create_order", {"item": 'O\'Neil "XL" desk', "quantity": 2, "tags": ["a", None, True], "due": None})
    text = render_chat(tokenizer, [{"role": "user", "content": "Order 2 desks"}, assistant_message([call])], [ORDER_TOOL])
    assert text.startswith(
        "<|system|>create_order(item: str, quantity: int, priority?: low|normal|high, due?: date, tags?: list[str])"
        " — Create an order.<|end|><|user|>Order 2 desks<|end|><|assistant|>")
    assert '"properties"' not in text  # signatures, not JSON Schema
    reply = text.split("<|assistant|>", 1)[1].removesuffix("<|end|>")
    assert get_format("pythonic").parse(reply).calls == [call]
    assert "{% generation %}" in BASE_TEMPLATE.replace("{%- generation -%}", "{% generation %}")


def test_built_model_dir_loads_and_its_tokenizer_splits_digits(built):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config, result = built
    out = result.output_dir
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja", "README.md", "build.json"} <= {
        p.name for p in out.iterdir()}
    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert sum(p.numel() for p in model.parameters()) == result.parameters
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id == tokenizer.convert_tokens_to_ids("<|end|>")

    pieces = tokenizer.tokenize("Charge $12.50 to flt_0042")
    assert [p for p in pieces if any(ch.isdigit() for ch in p)] == ["1", "2", "5", "0", "0", "0", "4", "2"]
    assert tokenizer.decode(tokenizer("Charge $12.50 to flt_0042")["input_ids"]) == "Charge $12.50 to flt_0042"

    setup = chat_setup(tokenizer)
    assert (setup.builtin, setup.call_format.name) == (False, "pythonic")
    assert "create_order(item: str, quantity: int, priority?: low|normal|high" in render_chat(
        tokenizer, [{"role": "user", "content": "hi"}], [ORDER_TOOL])


def test_assistant_mask_matches_the_generation_markers(built):
    from transformers import AutoTokenizer

    from tooltune.train.dataset import tokenize_conversation

    tokenizer = AutoTokenizer.from_pretrained(built[1].output_dir)
    messages = [{"role": "user", "content": "Order 2 desks"},
                assistant_message([ToolCall("create_order", {"item": "desk", "quantity": 2})]),
                {"role": "tool", "content": '{"id": "o_1"}'}, assistant_message(content="Done: o_1.")]
    ours = tokenize_conversation(tokenizer, messages, [ORDER_TOOL])
    theirs = tokenizer.apply_chat_template(messages, tools=[ORDER_TOOL.to_openai()], return_dict=True,
                                           return_assistant_tokens_mask=True)
    assert ours.input_ids == theirs["input_ids"]
    assert ours.assistant_mask == theirs["assistant_masks"]
    trained = tokenizer.decode([t for t, m in zip(ours.input_ids, ours.assistant_mask) if m])
    assert trained == '[create_order(item="desk", quantity=2)]<|end|>Done: o_1.<|end|>'


# ---------------------------------------------------------------- the build


def test_smoke_build_trains_and_writes_card_and_build_info(built):
    config, result = built
    assert result.steps == 50 and result.tools == len(tool_universe(0))
    assert result.train_loss is not None and result.train_loss < math.log(config.vocab_size)  # it learned something
    assert set(result.accuracy) == set(base.EVAL_SPLITS)
    card = (result.output_dir / "README.md").read_text()
    assert base.reproduce_command(config, result) in card and "| unseen_tools |" in card and "is **not**" in card
    assert "--max-steps 50" in base.reproduce_command(config, result)
    info = json.loads((result.output_dir / "build.json").read_text())
    assert info["config"]["size"] == "micro" and info["result"]["steps"] == 50
    assert set(info["evaluation"]) == set(base.EVAL_SPLITS)


def test_compact_lm_head_gives_the_same_loss_and_gradients():
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig
    from trl.trainer.utils import add_fused_lm_head

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(LlamaConfig(
        vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=2))
    add_fused_lm_head(model)
    ids = torch.randint(0, 300, (1, 40))
    labels = ids.clone()
    labels[:, :25] = -100

    def loss_and_grad():
        model.zero_grad()
        loss = model(input_ids=ids, labels=labels, use_cache=False, fused_lm_head=True).loss
        loss.backward()
        return loss.detach(), model.model.embed_tokens.weight.grad.clone()

    full = loss_and_grad()
    with cpu_compact_lm_head():
        compact = loss_and_grad()
    assert torch.allclose(full[0], compact[0], atol=1e-6) and torch.allclose(full[1], compact[1], atol=1e-6)


def test_config_needs_a_budget_and_writes_the_committed_fixture_by_default():
    with pytest.raises(ValueError, match="minutes .* or max_steps"):
        BaseBuildConfig(minutes=None)
    assert BaseBuildConfig().resolved_output_dir == TINY_BASE_DIR == FIXTURES / "tiny_base" / "model"


def test_the_build_command_parses_back_into_its_config():
    """The card's command line is the recipe's own CLI: parsed back, it names the same build."""
    config = BaseBuildConfig(size="micro", n_examples=300, max_steps=50, batch_size=2, threads=1)
    command = base.build_command(config).split()
    assert command[:3] == ["python", "-m", "tests.fixtures.tiny_base.recipe"]
    assert base.config_from_args(command[3:]) == config


def test_docs_table_matches_the_config():
    assert base_config_markdown() in DOCS.read_text(), f"regenerate the table in {DOCS} (base_config_markdown())"
