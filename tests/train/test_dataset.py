"""Assistant-only loss: exactly the assistant turns are trained, for templates with and without
``{% generation %}`` markers; schemas reach the text verbatim; unstable templates are refused."""

from __future__ import annotations

import json

import pytest

from tests.conftest import FIXTURES
from tooltune.data.examples import Behavior, read_jsonl, target_messages
from tooltune.errors import TemplateError
from tooltune.formats.chat import chat_setup, render_chat
from tooltune.tools.catalog import ToolCatalog
from tooltune.train.dataset import IGNORE_INDEX, build_dataset, tokenize_conversation, tokenize_example

TRAIN = FIXTURES / "train"
QWEN25 = (FIXTURES / "chat_templates" / "qwen25_style.jinja").read_text()


@pytest.fixture(scope="module")
def catalog():
    return ToolCatalog.load(TRAIN / "catalog.json")


@pytest.fixture(scope="module")
def examples():
    return list(read_jsonl(TRAIN / "train.jsonl"))


@pytest.fixture(scope="module")
def sequence(examples):
    """user → call → result → call → result → call → result → answer."""
    return next(e for e in examples if e.behavior is Behavior.SEQUENCE)


def trained_runs(tokenizer, ids, mask):
    """Decoded text of each maximal run of trained tokens, and of each untrained run."""
    runs = {1: [], 0: []}
    current, flag = [], None
    for token, m in zip(ids, mask):
        if m != flag and current:
            runs[flag].append(tokenizer.decode(current))
            current = []
        current.append(token)
        flag = m
    if current:
        runs[flag].append(tokenizer.decode(current))
    return runs[1], runs[0]


def call_text(name, arguments):
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False) + "\n</tool_call>"


@pytest.mark.parametrize("template", [None, QWEN25], ids=["builtin-generation-markers", "qwen25-no-markers"])
def test_only_assistant_turns_are_trained(make_tokenizer, catalog, sequence, template):
    tok = make_tokenizer(template)
    assert chat_setup(tok).builtin is (template is None)
    conv = tokenize_example(tok, sequence, catalog)
    trained, context = trained_runs(tok, conv.input_ids, conv.assistant_mask)

    # Exactly the three calls (references resolved from the recorded results) and the answer,
    # each closed by the end-of-turn token the model must learn to emit.
    assert trained == [
        call_text("get_customer_by_name", {"name": "John Smith"}) + "<|im_end|>",
        call_text("get_latest_order", {"customer_id": "cus_0001"}) + "<|im_end|>",
        call_text("create_payment", {"amount": 5000, "invoice_id": "inv_1001", "customer_id": "cus_0001"}) + "<|im_end|>",
        "Done: John Smith paid $50.00 for invoice inv_1001 (payment pay_1).<|im_end|>",
    ]
    # Everything else is context: tool listing, user turn, tool results, every assistant header.
    context_text = "".join(context)
    assert sorted("".join(trained) + context_text) == sorted(conv.text)  # the two partition the text
    assert '"name": "create_payment"' in context_text and "<tools>" in context_text
    assert "Charge John Smith for his latest order." in context_text
    for result in sequence.step_results:
        assert json.dumps(result) in context_text
    # Each trained run starts right after an assistant header; only the newline after the last turn follows.
    assert [run.endswith("<|im_start|>assistant\n") for run in context] == [True] * 4 + [False]
    assert context[-1] == "\n"
    assert conv.labels.count(IGNORE_INDEX) == len(conv.input_ids) - sum(conv.assistant_mask)
    assert conv.boundary_splits == 0 and conv.untrained_stops == 0


def test_prefix_diff_mask_equals_generation_marker_mask(make_tokenizer, catalog, examples):
    """For the built-in template (which has {% generation %}), the template-independent mask equals
    the one transformers derives from the markers: one code path, checked against the other."""
    tok = make_tokenizer(None)
    captured = {}
    original = tok.apply_chat_template

    def spy(conversation, **kwargs):  # see exactly what render_chat hands the template
        captured.update(conversation=conversation, kwargs=kwargs)
        return original(conversation, **kwargs)

    tok.apply_chat_template = spy
    for example in examples:
        messages, tools = target_messages(example), example.offered_tools(catalog)
        ours = tokenize_conversation(tok, messages, tools)
        render_chat(tok, messages, tools)  # the full conversation, captured
        kwargs = {**captured["kwargs"], "tokenize": True, "return_dict": True, "return_assistant_tokens_mask": True}
        marked = original(captured["conversation"], **kwargs)
        assert marked["input_ids"] == ours.input_ids, example.id
        assert marked["assistant_masks"] == ours.assistant_mask, example.id


def test_dataset_holds_only_token_ids_and_schemas_reach_the_text_verbatim(make_tokenizer, catalog, examples):
    tok = make_tokenizer(QWEN25)
    dataset, stats = build_dataset(tok, examples, catalog)
    assert dataset.column_names == ["input_ids", "labels"]
    assert stats.examples == len(examples) and stats.example_ids == [e.id for e in examples]
    assert stats.trained_tokens == sum(label != IGNORE_INDEX for row in dataset["labels"] for label in row)
    payment = next(e for e in examples if "metadata" in json.dumps([c.arguments for c in e.calls]))
    text = tokenize_example(tok, payment, catalog).text
    for tool in payment.offered_tools(catalog):  # nested object schema, key order and all
        assert json.dumps(tool.to_openai(), ensure_ascii=False) in text
    assert '"café"' in text  # arguments rendered as JSON, not Python repr, non-ASCII kept


def test_examples_longer_than_max_length_are_skipped_not_cut(make_tokenizer, catalog, examples):
    tok = make_tokenizer(None)
    lengths = [len(tokenize_example(tok, e, catalog).input_ids) for e in examples]
    limit = sorted(lengths)[len(lengths) // 2]
    dataset, stats = build_dataset(tok, examples, catalog, max_length=limit)
    assert stats.skipped_too_long == sum(n > limit for n in lengths) > 0
    assert len(dataset) == stats.examples == sum(n <= limit for n in lengths)
    end = tok.convert_tokens_to_ids("<|im_end|>")  # kept rows are whole: the last trained token ends the turn
    assert all([t for t in row if t != IGNORE_INDEX][-1] == end for row in dataset["labels"])


# Two ways a template can break prefix stability, made from the Qwen2.5-style one.
REASONING_ON_LAST_TURN = QWEN25.replace(
    "{{- '<|im_start|>assistant' }}",
    "{{- '<|im_start|>assistant' }}{%- if loop.last %}{{- '\\n<think>\\n</think>' }}{%- endif %}",
)
PROMPT_NOT_A_HEADER = QWEN25.replace(
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}",
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n<think>\\n' }}",
)


@pytest.mark.parametrize(("template", "says"), [
    (REASONING_ON_LAST_TURN, "renders this turn differently once later messages follow"),
    (PROMPT_NOT_A_HEADER, "not prefix-stable"),
])
def test_templates_that_are_not_prefix_stable_are_refused(make_tokenizer, catalog, sequence, template, says):
    assert template != QWEN25
    tok = make_tokenizer(template)
    with pytest.raises(TemplateError, match=says) as info:
        build_dataset(tok, [sequence], catalog, where="train.jsonl")
    message = str(info.value)
    assert message.startswith(f"train.jsonl: example 1 ({sequence.id}): message 1 (assistant)")
    assert "built-in" in message or "prefix-stable template" in message  # says what to do
