"""The one rendering path: templates with and without tool support, argument-style detection."""

import json

import pytest

from tooltune.errors import TemplateError
from tooltune.formats.chat import assistant_message, call_format_for, chat_setup, render_chat
from tooltune.tools.call import ToolCall
from tooltune.tools.catalog import ToolCatalog

FIXTURES = __import__("pathlib").Path(__file__).parent.parent / "fixtures" / "chat_templates"
CALL = ToolCall("create_payment", {"amount": 5000, "invoice_id": "INV-1", "customer_id": "C-1", "note": "café \"x\""})


def conversation():
    return [
        {"role": "system", "content": "You work for the shop."},
        {"role": "user", "content": "Charge C-1 $50 for INV-1"},
        assistant_message([CALL]),
        {"role": "tool", "content": json.dumps({"payment_id": "P-1", "state": "pending"})},
        assistant_message(content="Done: payment P-1 is pending."),
    ]


@pytest.fixture
def catalog(shop_catalog_dict):
    return ToolCatalog.from_dict(shop_catalog_dict)


def with_template(make_tokenizer, name):
    return make_tokenizer((FIXTURES / name).read_text())


def test_builtin_template_when_tokenizer_has_none(make_tokenizer, catalog):
    tok = make_tokenizer(None)
    setup = chat_setup(tok)
    assert setup.builtin and setup.call_format.name == "hermes"
    text = render_chat(tok, conversation(), catalog)
    assert '"name": "create_payment"' in text  # the tool listing
    # The assistant turn holds exactly what the serving parser reads back.
    assert setup.call_format.render([CALL]) in text
    assert text.count("<|im_start|>assistant") == 2 and "<tool_response>" in text
    prompt = render_chat(tok, conversation()[:2], catalog, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n") and text.startswith(prompt[: -len("<|im_start|>assistant\n")])


def test_builtin_template_marks_assistant_spans(make_tokenizer, catalog):
    tok = make_tokenizer(None)
    text = render_chat(tok, conversation(), catalog)
    out = tok.apply_chat_template(conversation()[:3], tools=[t.to_openai() for t in catalog],
                                  chat_template=chat_setup(tok).template, tokenize=True, return_dict=True,
                                  return_assistant_tokens_mask=True)
    assert 1 in out["assistant_masks"]
    assert text  # rendering itself needs no mask support


def test_template_with_tools_gets_dict_arguments(make_tokenizer, catalog):
    tok = with_template(make_tokenizer, "qwen25_style.jinja")
    setup = chat_setup(tok)
    assert not setup.builtin and setup.arguments_style == "dict" and setup.call_format.name == "hermes"
    text = render_chat(tok, conversation(), catalog)
    assert json.dumps(CALL.arguments, ensure_ascii=False) in text
    assert "'amount'" not in text  # no Python repr leaking in


def test_template_printing_strings_gets_json_arguments(make_tokenizer, catalog):
    tok = with_template(make_tokenizer, "string_arguments.jinja")
    setup = chat_setup(tok)
    assert setup.arguments_style == "json"
    text = render_chat(tok, conversation(), catalog)
    assert json.dumps(CALL.arguments, ensure_ascii=False) in text
    assert "'amount'" not in text and '\\"amount\\"' not in text


def test_rendered_call_parses_back_with_the_serving_parser(make_tokenizer, catalog):
    for template in (None, "qwen25_style.jinja", "string_arguments.jinja"):
        tok = make_tokenizer((FIXTURES / template).read_text() if template else None)
        prompt = render_chat(tok, conversation()[:2], catalog, add_generation_prompt=True)
        full = render_chat(tok, conversation()[:3], catalog)
        completion = full[len(prompt):]
        for token in tok.all_special_tokens:
            completion = completion.replace(token, "")
        result = call_format_for(tok).parse(completion)
        assert result.calls == [CALL], template


def test_caller_messages_are_not_mutated(make_tokenizer, catalog):
    tok = make_tokenizer(None)
    messages = conversation()
    before = json.dumps(messages)
    render_chat(tok, messages, catalog)
    assert json.dumps(messages) == before


def test_unreadable_template_fails_with_advice(make_tokenizer):
    weird = "{% for m in messages %}{{ m.role }}:{% if m.tool_calls %}CALL {{ m.tool_calls[0].function.name }}{% endif %}{% endfor %}{{ tools }}"
    with pytest.raises(TemplateError, match="no tooltune format reads"):
        chat_setup(make_tokenizer(weird))


def test_builtin_template_is_self_contained_for_other_servers(make_tokenizer, catalog):
    """A server that passes tool_calls straight to the template (vLLM with the run dir's
    template) must produce the bytes tooltune trained on."""
    tok = make_tokenizer(None)
    ours = render_chat(tok, conversation(), catalog)
    theirs = tok.apply_chat_template(conversation(), tools=[t.to_openai() for t in catalog],
                                     chat_template=chat_setup(tok).template, tokenize=False)
    assert theirs == ours


def test_saved_builtin_template_is_recognised_after_reload(make_tokenizer, catalog, tmp_path):
    from transformers import AutoTokenizer

    tok = make_tokenizer(None)
    tok.chat_template = chat_setup(tok).template
    tok.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert chat_setup(reloaded).builtin
    assert render_chat(reloaded, conversation(), catalog) == render_chat(make_tokenizer(None), conversation(), catalog)
