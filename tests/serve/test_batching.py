"""The server's batching queue: requests arriving together share a batch, and get what they would alone."""

from __future__ import annotations

import threading

import pytest

from tooltune.errors import ConfigError
from tooltune.runtime.generate import Generator, Prompt
from tooltune.runtime.prefix import PrefixCache, prompt_prefix
from tooltune.serve.batching import Batcher

QUERIES = ["Charge cus_0001 $50 for invoice inv_1043", "List the shipped orders", "Which orders await shipment?",
           "Pay invoice inv_2000 for cus_0002, 12 dollars"]


@pytest.fixture(scope="module")
def pool(hermes_base, loras):
    from tooltune.serve.models import ModelPool
    from tooltune.serve.settings import ServeSettings

    return ModelPool(ServeSettings(model=str(hermes_base), adapters={"a": loras["a"]}, device="cpu"))


@pytest.fixture(scope="module")
def tools(shop_catalog_dict):
    from tooltune.tools.catalog import ToolCatalog

    return list(ToolCatalog.from_dict(shop_catalog_dict))


def _prompt(loaded, query: str, tools, **fields) -> Prompt:
    messages = [{"role": "user", "content": query}]
    text = loaded.render(messages, tools)
    return Prompt(text, prompt_prefix(loaded, messages, tools, text), **fields)


def _alone(pool, served, prompt: Prompt) -> str:
    with pool.using(served) as loaded:
        return Generator(loaded, max_new_tokens=16, batch_size=1, prefix_cache=False).generate_prompts([prompt.text], [prompt.grammar])[0].text


def _together(batcher: Batcher, jobs: list) -> list:
    """Submit every (served, prompt) at once from its own thread; results (or errors) in order."""
    results: list = [None] * len(jobs)
    start = threading.Barrier(len(jobs))

    def submit(i: int) -> None:
        start.wait()
        try:
            results[i] = batcher.generate(*jobs[i])
        except Exception as e:  # noqa: BLE001 - compared below
            results[i] = e

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def test_requests_arriving_together_share_one_batch_and_get_their_own_outputs(pool, tools):
    base = pool.resolve("base")
    batcher = Batcher(pool, max_new_tokens=16, max_batch=4, window_ms=1000, prefix_cache=PrefixCache())
    prompts = [_prompt(base.loaded, q, tools) for q in QUERIES]
    results = _together(batcher, [(base, p) for p in prompts])
    assert batcher.batches == 1  # four requests, one generation
    assert [r.text for r in results] == [_alone(pool, base, p) for p in prompts]
    assert len(batcher.prefix_cache) == 1  # one listing, prefilled once


def test_requests_for_different_models_are_batched_apart(pool, tools):
    base, adapter = pool.resolve("base"), pool.resolve("a")
    batcher = Batcher(pool, max_new_tokens=16, max_batch=8, window_ms=1000, prefix_cache=PrefixCache())
    jobs = [(served, _prompt(served.loaded, q, tools)) for q in QUERIES[:2] for served in (base, adapter)]
    results = _together(batcher, jobs)
    assert batcher.batches == 2
    assert [r.text for r in results] == [_alone(pool, served, p) for served, p in jobs]
    assert [r.text for r in results[0::2]] != [r.text for r in results[1::2]]  # the adapter does change them


def test_a_request_that_fails_fails_alone(pool, tools):
    base = pool.resolve("base")
    batcher = Batcher(pool, max_new_tokens=16, max_batch=4, window_ms=1000, prefix_cache=None)
    good = [_prompt(base.loaded, q, tools) for q in QUERIES[:2]]
    broken = _prompt(base.loaded, QUERIES[2], tools, grammar="start: (")  # does not compile
    results = _together(batcher, [(base, good[0]), (base, broken), (base, good[1])])
    assert isinstance(results[1], ConfigError) and "does not compile" in str(results[1])
    assert [results[0].text, results[2].text] == [_alone(pool, base, p) for p in good]
    assert batcher.batches == 1


def test_settings_are_checked():
    with pytest.raises(ValueError, match="max_batch"):
        Batcher(object(), max_new_tokens=8, max_batch=0)
