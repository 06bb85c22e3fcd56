"""Prefix-cached generation gives exactly the outputs of uncached greedy decoding (tiny models)."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import build_tiny_tokenizer
from tooltune.runtime.generate import Generator, Prompt
from tooltune.runtime.model import LoadedModel
from tooltune.runtime.prefix import PrefixCache, PrefixKV, model_scope, prompt_prefix
from tooltune.formats.base import get_format
from tooltune.tools.call import ToolCall

WORDS = ("charge john fifty dollars for invoice refund the order list payments weather in paris customer smith "
         "shipped latest cus_0001 inv_1043 please").split()


@pytest.fixture(scope="module")
def sharp_model_dir(tmp_path_factory) -> Path:
    """A random 2-layer Llama whose weights are large enough (init std 0.3) that its greedy output
    depends on the whole prompt: nearly every prompt below gets an output of its own."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(0)
    tokenizer = build_tiny_tokenizer()
    config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=2, vocab_size=len(tokenizer), max_position_embeddings=4096, bos_token_id=None,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, initializer_range=0.3)
    directory = tmp_path_factory.mktemp("sharp-llama")
    AutoModelForCausalLM.from_config(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def sharp_lora(sharp_model_dir, tmp_path_factory) -> Path:
    from tests.serve.conftest import make_lora

    return make_lora(sharp_model_dir, tmp_path_factory.mktemp("sharp-lora"), seed=3)


def _load(model_dir: Path, adapter: Path | None = None) -> LoadedModel:
    import torch

    from tooltune.runtime.model import load_model

    torch.set_num_threads(1)
    # Unmerged, as the server runs adapters: the prefix is prefilled through the PEFT layers.
    return load_model(model_dir, adapter, merge_adapter=False)


def _requests(catalog, n: int, seed: int = 0) -> list:
    """First turns with several tool listings, some with a system text, some without tools, and
    agent-loop continuations (an assistant call, its tool result) of the same conversations."""
    rng = random.Random(seed)
    tools = list(catalog)
    listings = [tools[:1], tools[1:3], [tools[3]], [tools[2], tools[0]], tools[4:6]]
    hermes = get_format("hermes")
    requests = []
    for i in range(n):
        messages = [{"role": "system", "content": "Answer briefly."}] if i % 6 == 0 else []
        messages.append({"role": "user", "content": " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 14)))})
        if i % 4 == 3:
            messages += [{"role": "assistant", "content": hermes.render([ToolCall("get_orders", {"fulfillment_state": "shipped"})])},
                         {"role": "tool", "content": '{"orders": [{"id": "ord_%d", "total": %d}]}' % (i, 100 * i)}]
        requests.append((messages, None if i % 9 == 4 else rng.choice(listings)))
    return requests


@pytest.mark.parametrize("with_adapter", [False, True], ids=["base", "adapter"])
def test_cached_generation_gives_exactly_the_uncached_greedy_outputs(sharp_model_dir, sharp_lora, shop_catalog, with_adapter):
    loaded = _load(sharp_model_dir, sharp_lora if with_adapter else None)
    requests = _requests(shop_catalog, 240)
    cached = Generator(loaded, max_new_tokens=10, batch_size=16)
    outputs = cached.generate(requests)
    alone = Generator(loaded, max_new_tokens=10, batch_size=1, prefix_cache=False).generate(requests)

    assert [g.text for g in outputs] == [g.text for g in alone]
    assert [(g.new_tokens, g.stopped, g.prompt_tokens) for g in outputs] == [(g.new_tokens, g.stopped, g.prompt_tokens) for g in alone]
    assert len({g.text for g in outputs}) > 200  # the outputs depend on the prompts: the comparison has teeth
    # The listings really were shared: five prefixes (and the system-text variants) prefilled once each.
    assert cached.prefill_tokens < 0.4 * cached.prompt_tokens
    assert 5 <= len(cached.prefix_cache) <= 12


def test_one_cache_keeps_the_base_and_each_adapter_apart(sharp_model_dir, sharp_lora, shop_catalog):
    from tooltune.serve.models import ModelPool
    from tooltune.serve.settings import ServeSettings

    pool = ModelPool(ServeSettings(model=str(sharp_model_dir), adapters={"a": sharp_lora}, device="cpu"))
    requests = _requests(shop_catalog, 40, seed=1)
    shared = PrefixCache()

    def run(name: str, cache) -> list[str]:
        with pool.using(pool.resolve(name)) as loaded:
            return [g.text for g in Generator(loaded, max_new_tokens=10, batch_size=8, prefix_cache=cache).generate(requests)]

    base = run("base", shared)  # fills the cache with the base's prefixes first
    adapter = run("a", shared)
    assert adapter == run("a", False)
    assert base == run("base", False)
    assert sum(a != b for a, b in zip(adapter, base)) > 30  # the adapter changes the outputs
    per_prefix = Counter(ids for _, ids in shared._entries)
    assert len({scope for scope, _ in shared._entries}) == 2 and set(per_prefix.values()) == {2}


def test_a_prefix_whose_tokens_do_not_start_the_prompt_is_not_shared(sharp_model_dir):
    loaded = _load(sharp_model_dir)
    text = loaded.render([{"role": "user", "content": "Charge John fifty dollars."}], None)
    cut = text.index("Charge") + 3  # ends inside a word: "Cha" does not tokenize as the start of "Charge"
    generator = Generator(loaded, max_new_tokens=8)
    [shared] = generator.generate_prompts([Prompt(text, prefix=text[:cut])])
    [plain] = Generator(loaded, max_new_tokens=8, prefix_cache=False).generate_prompts([text])
    assert shared.text == plain.text
    assert generator.prefill_tokens == generator.prompt_tokens and len(generator.prefix_cache) == 0


def test_the_prefix_is_the_rendering_before_the_first_user_turn(tiny_loaded, shop_catalog):
    tools = [shop_catalog.get("create_payment")]
    first = [{"role": "user", "content": "Charge John fifty dollars."}]
    later = first + [{"role": "assistant", "content": "Which invoice?"}, {"role": "user", "content": "inv_1043"}]
    prefix = prompt_prefix(tiny_loaded, first, tools, tiny_loaded.render(first, tools))
    assert prefix.startswith("<|im_start|>system\n") and "create_payment" in prefix
    assert prefix.endswith("<|im_end|>\n<|im_start|>")  # up to the user turn's opener, an added token
    assert "fifty dollars" not in prefix
    assert prompt_prefix(tiny_loaded, later, tools, tiny_loaded.render(later, tools)) == prefix
    with_system = [{"role": "system", "content": "Be brief."}, *first]
    assert "Be brief." in prompt_prefix(tiny_loaded, with_system, tools, tiny_loaded.render(with_system, tools))
    assert prompt_prefix(tiny_loaded, [{"role": "assistant", "content": "Hi"}], tools, "") == ""  # no user turn


def test_a_prompt_only_models_few_shot_turns_are_part_of_the_prefix(tiny_loaded, shop_catalog):
    from dataclasses import replace

    few_shot = [{"role": "user", "content": "Refund pay_0003."}, {"role": "assistant", "content": "Done."}]
    prompted = replace(tiny_loaded, kind="prompt", system="You are the shop's assistant.", few_shot=few_shot)
    messages = [{"role": "user", "content": "Charge John fifty dollars."}]
    prefix = prompt_prefix(prompted, messages, None, prompted.render(messages, None))
    assert "shop's assistant" in prefix and "Refund pay_0003." in prefix and "fifty dollars" not in prefix


def test_rows_of_one_batch_keep_their_own_limit_grammar_and_stream(sharp_model_dir, shop_catalog):
    from tooltune.runtime.constrained import tool_call_grammar

    loaded = _load(sharp_model_dir)
    tools = [shop_catalog.get("get_orders")]
    generator = Generator(loaded, max_new_tokens=24)
    short, streamed, forced = (generator.prompt([{"role": "user", "content": text}], tools)
                               for text in ("List the shipped orders", "Refund the order", "Orders please"))
    grammar = tool_call_grammar(loaded.call_format, tools, allow_text=False)
    stream = _Collect()
    batch = generator.generate_prompts([Prompt(short.text, short.prefix, max_new_tokens=3),
                                        Prompt(streamed.text, streamed.prefix, streamer=stream),
                                        Prompt(forced.text, forced.prefix, grammar=grammar)])
    uncached = Generator(loaded, max_new_tokens=24, prefix_cache=False)
    assert batch[0] == _same_timing(uncached.generate_prompts([Prompt(short.text, max_new_tokens=3)])[0], batch[0])
    assert batch[0].new_tokens == 3 and batch[0].truncated
    assert batch[1].text == uncached.generate_prompts([streamed.text])[0].text
    assert loaded.tokenizer.decode(stream.ids, skip_special_tokens=True).startswith(batch[1].text)
    assert len(stream.ids) == batch[1].new_tokens and stream.ended
    assert batch[2].text == uncached.generate_prompts([forced.text], [grammar])[0].text
    assert batch[2].text.startswith('<tool_call>\n{"name": "get_orders"')


def test_a_model_with_sliding_window_layers_prefills_every_prompt_whole(tmp_path, shop_catalog):
    import torch
    from transformers import AutoModelForCausalLM, MistralConfig

    torch.manual_seed(0)
    tokenizer = build_tiny_tokenizer()
    config = MistralConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           num_key_value_heads=2, vocab_size=len(tokenizer), sliding_window=64, bos_token_id=None,
                           eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, initializer_range=0.3)
    AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded = _load(tmp_path)
    requests = _requests(shop_catalog, 6)
    generator = Generator(loaded, max_new_tokens=6, batch_size=3)
    assert [g.text for g in generator.generate(requests)] == \
        [g.text for g in Generator(loaded, max_new_tokens=6, batch_size=1, prefix_cache=False).generate(requests)]
    assert generator.prefix_cache is None and generator.prefill_tokens == generator.prompt_tokens


def test_the_lru_keeps_recent_prefixes_within_its_bound():
    import torch

    def entry(ids: tuple[int, ...]) -> PrefixKV:  # 2 layers x (keys, values) x 1x1xPx64 floats: 1 KiB per token
        return PrefixKV(ids, [(torch.zeros(1, 1, len(ids), 64), torch.zeros(1, 1, len(ids), 64))] * 2)

    cache = PrefixCache(max_mb=5 / 1024)  # 5 KiB
    cache.put("base", entry((1, 2)))
    cache.put("base", entry((3,)))
    cache.put("adapter", entry((1, 2)))  # same tokens, another model: its own entry
    assert cache.get("base", (1, 2)) is not None  # now the most recent
    assert cache.get("adapter", (1, 2)).ids == (1, 2) and cache.get("base", (9,)) is None
    cache.get("base", (1, 2))
    cache.put("base", entry((4, 5)))  # 7 KiB: the least recently used go, base (3,) then adapter (1, 2)
    assert cache.get("base", (3,)) is None and cache.get("adapter", (1, 2)) is None
    assert cache.get("base", (1, 2)) is not None and cache.get("base", (4, 5)) is not None
    assert cache.bytes == 4 * 1024 <= cache.max_bytes
    cache.put("base", entry(tuple(range(6))))  # larger than the whole bound: used, not kept
    assert cache.get("base", tuple(range(6))) is None and len(cache) == 2
    assert cache.stats()["evictions"] == 2
    with pytest.raises(ValueError, match="max_mb"):
        PrefixCache(-1)


def test_the_cache_scope_names_the_model_object_and_the_adapter(tiny_loaded):
    from dataclasses import replace

    import torch

    assert model_scope(tiny_loaded) == model_scope(replace(tiny_loaded))
    assert model_scope(replace(tiny_loaded, name="a", adapter="/runs/a")) != model_scope(tiny_loaded)
    assert model_scope(replace(tiny_loaded, model=torch.nn.Linear(1, 1))) != model_scope(tiny_loaded)


class _Collect:
    """A streamer keeping what it is handed after the prompt."""

    def __init__(self):
        self.ids: list[int] = []
        self.prompt_seen = self.ended = False

    def put(self, value) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        self.ids.extend(value.reshape(-1).tolist())

    def end(self) -> None:
        self.ended = True


def _same_timing(generation, like):
    from dataclasses import replace

    return replace(generation, latency_ms=like.latency_ms)
