"""Fixtures for the model-running eval tests: a tiny random Llama on disk, loaded once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import FIXTURES


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A random 2-layer Llama (hidden 32) with the tiny tokenizer (built-in template, hermes calls)."""
    import torch

    from tests.train.conftest import save_tiny_model

    torch.manual_seed(0)
    return save_tiny_model(tmp_path_factory.mktemp("eval_tiny_llama"))


@pytest.fixture(scope="session")
def tiny_loaded(tiny_model_dir):
    import torch

    from tooltune.runtime.model import load_model

    # The test machine's few cores are shared: one thread is faster for a model this small.
    torch.set_num_threads(1)
    return load_model(tiny_model_dir)


@pytest.fixture(scope="session")
def shop_catalog():
    from tooltune.tools.catalog import ToolCatalog

    return ToolCatalog.load(FIXTURES / "catalogs" / "shop.json")
