"""The offline base model's tokenizer and chat template.

**Template** (:data:`BASE_TEMPLATE`, Jinja, rendered by :func:`tooltune.formats.chat.render_chat`
like any other): tools are listed as compact signatures, one a line, not as JSON Schema (an
earlier attempt spent ~90% of its compute reading JSON tool lists)::

    <|system|>create_order(item: str, quantity: int, priority?: low|normal|high) — Create an order.
    get_weather(city: str, date?: date) — Get the weather for a city.<|end|><|user|>…<|end|><|assistant|>[create_order(item="desk", quantity=2)]<|end|>

``?`` marks an optional parameter; types are ``str int float bool date datetime email dict
list[…]`` or the enum values joined by ``|``; the description is cut to its first sentence.
Calls are written in the ``pythonic`` format (the most compact one, and the one
:func:`~tooltune.formats.chat.chat_setup` detects for this template), with string values in
double quotes. Assistant turns are wrapped in ``{% generation %}`` markers, and every turn ends
with the ``<|end|>`` special token, which is also the EOS token generation stops at.

**Tokenizer** (:func:`train_tokenizer`): byte-level BPE trained locally with ``tokenizers``
on rendered training conversations, ~3k tokens, with digits always split into single tokens
(``Digits(individual_digits=True)`` before the byte-level split), so that "$12.50" → ``1250``
is a copy of four digit tokens rather than a lookup of merged number tokens.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tooltune.formats.chat import PTYPE_MACRO

SPECIAL_TOKENS = ("<|pad|>", "<|system|>", "<|user|>", "<|assistant|>", "<|tool|>", "<|end|>")
PAD_TOKEN, EOS_TOKEN = "<|pad|>", "<|end|>"

BASE_TEMPLATE = (
    "{#- tooltune base template v1: compact tool signatures, calls in pythonic format -#}"
    "{%- macro py(v) -%}"
    "{%- if v is none -%}{{- 'None' -}}"
    "{%- elif v is boolean -%}{{- 'True' if v else 'False' -}}"
    "{%- elif v is string or v is number -%}{{- v | tojson -}}"
    "{%- elif v is mapping -%}{{- '{' -}}{%- for k, x in v.items() -%}{{- k | tojson -}}{{- ': ' -}}{{- py(x) -}}"
    "{%- if not loop.last -%}{{- ', ' -}}{%- endif -%}{%- endfor -%}{{- '}' -}}"
    "{%- else -%}{{- '[' -}}{%- for x in v -%}{{- py(x) -}}{%- if not loop.last -%}{{- ', ' -}}{%- endif -%}{%- endfor -%}{{- ']' -}}"
    "{%- endif -%}"
    "{%- endmacro -%}"
    + PTYPE_MACRO +
    "{%- set ns = namespace(system='') -%}"
    "{%- if messages and messages[0].role == 'system' -%}{%- set ns.system = messages[0].content -%}{%- endif -%}"
    "{%- if tools or ns.system -%}"
    "{{- '<|system|>' -}}"
    "{%- if ns.system -%}{{- ns.system -}}{%- if tools -%}{{- '\\n' -}}{%- endif -%}{%- endif -%}"
    "{%- for tool in tools or [] -%}"
    "{%- set fn = tool.function if tool.function is defined else tool -%}"
    "{%- set params = fn.parameters if fn.parameters is mapping else {} -%}"
    "{%- set required = params.required if params.required is defined and params.required else [] -%}"
    "{{- fn.name + '(' -}}"
    "{%- for name, p in (params.properties if params.properties is mapping else {}).items() -%}"
    "{{- name -}}{%- if name not in required -%}{{- '?' -}}{%- endif -%}{{- ': ' -}}{{- ptype(p) -}}"
    "{%- if not loop.last -%}{{- ', ' -}}{%- endif -%}"
    "{%- endfor -%}"
    "{{- ')' -}}"
    "{%- set summary = (fn.description or '').strip().split('\\n')[0].split('. ')[0].strip().rstrip('.') -%}"
    "{%- if summary -%}{{- ' — ' + summary + '.' -}}{%- endif -%}"
    "{%- if not loop.last -%}{{- '\\n' -}}{%- endif -%}"
    "{%- endfor -%}"
    "{{- '<|end|>' -}}"
    "{%- endif -%}"
    "{%- for message in messages -%}"
    "{%- if message.role == 'user' -%}"
    "{{- '<|user|>' + message.content + '<|end|>' -}}"
    "{%- elif message.role == 'assistant' -%}"
    "{{- '<|assistant|>' -}}"
    "{%- generation -%}"
    "{{- message.content or '' -}}"
    "{%- if message.tool_calls -%}"
    "{%- if message.content -%}{{- '\\n' -}}{%- endif -%}"
    "{{- '[' -}}"
    "{%- for tc in message.tool_calls -%}"
    "{%- set fn = tc.function if tc.function is defined else tc -%}"
    "{{- fn.name + '(' -}}"
    "{%- for k, v in fn.arguments.items() -%}{{- k + '=' -}}{{- py(v) -}}{%- if not loop.last -%}{{- ', ' -}}{%- endif -%}{%- endfor -%}"
    "{{- ')' -}}{%- if not loop.last -%}{{- ', ' -}}{%- endif -%}"
    "{%- endfor -%}"
    "{{- ']' -}}"
    "{%- endif -%}"
    "{{- '<|end|>' -}}"
    "{%- endgeneration -%}"
    "{%- elif message.role == 'tool' -%}"
    "{{- '<|tool|>' + message.content + '<|end|>' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|assistant|>' -}}{%- endif -%}"
)


def base_tokenizer(tokenizer_object: Any = None) -> Any:
    """A ``PreTrainedTokenizerFast`` with the base's special tokens and chat template around
    ``tokenizer_object`` (a ``tokenizers.Tokenizer``); without one, an empty BPE that can only
    render text (used to render the conversations the real tokenizer is trained on)."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    if tokenizer_object is None:
        tokenizer_object = Tokenizer(models.BPE())
        tokenizer_object.add_special_tokens(list(SPECIAL_TOKENS))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer_object, eos_token=EOS_TOKEN, pad_token=PAD_TOKEN,
        additional_special_tokens=[t for t in SPECIAL_TOKENS if t not in (EOS_TOKEN, PAD_TOKEN)],
    )
    fast.chat_template = BASE_TEMPLATE
    fast.model_max_length = 1024  # the model's max_position_embeddings
    return fast


def train_tokenizer(texts: Iterable[str], vocab_size: int = 3072) -> Any:
    """Train the byte-level BPE (digits split) on ``texts`` and wrap it with :func:`base_tokenizer`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return base_tokenizer(tok)
