"""Training: ``TrainConfig`` from YAML + ``--set`` overrides, and one entry point per backend.

- ``run_training(config)``: runs ``config.backend`` (what ``tooltune train`` and
  ``python -m tooltune.train`` call);
- ``train(config)``: the ``hf`` backend, TRL/PEFT on local weights (:mod:`tooltune.train.sft`);
- ``train_cloud(config)``: the ``cloud`` backend, a provider's fine-tuning job (:mod:`tooltune.train.cloud`);
- ``build_prompt_model(config)``: the ``prompt`` backend, few-shot prompting (:mod:`tooltune.train.fewshot`).

``load_train_config`` is cheap to import; the backends load torch, transformers, TRL or the
openai SDK on first use, so that commands which only validate a config stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tooltune.train.config import CloudSettings, LoraSettings, PromptSettings, TrainConfig, load_train_config

if TYPE_CHECKING:
    from tooltune.train.cloud import CloudResult, train_cloud
    from tooltune.train.fewshot import PromptResult, build_prompt_model
    from tooltune.train.sft import RunResult, train

__all__ = [
    "CloudResult", "CloudSettings", "LoraSettings", "PromptResult", "PromptSettings", "RunResult", "TrainConfig",
    "build_prompt_model", "load_train_config", "run_training", "train", "train_cloud",
]

_LAZY = {"train": "sft", "RunResult": "sft", "train_cloud": "cloud", "CloudResult": "cloud",
         "build_prompt_model": "fewshot", "PromptResult": "fewshot"}


def run_training(config: TrainConfig, *, progress: bool = True) -> RunResult | CloudResult | PromptResult:
    """Run ``config.backend``: ``hf`` → :func:`train`, ``cloud`` → :func:`train_cloud`,
    ``prompt`` → :func:`build_prompt_model`. Each result has ``run_dir`` and ``manifest_path``."""
    entry = {"hf": "train", "cloud": "train_cloud", "prompt": "build_prompt_model"}[config.backend]
    return __getattr__(entry)(config, progress=progress)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"tooltune.train.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'tooltune.train' has no attribute {name!r}")
