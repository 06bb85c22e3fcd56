"""Training: ``TrainConfig`` from YAML + ``--set`` overrides, and ``train(config)`` (TRL/PEFT).

``load_train_config`` is cheap to import; ``train`` and ``RunResult`` load torch, transformers and
TRL on first use, so that commands which only validate a config stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tooltune.train.config import LoraSettings, TrainConfig, load_train_config

if TYPE_CHECKING:
    from tooltune.train.sft import RunResult, train

__all__ = ["LoraSettings", "RunResult", "TrainConfig", "load_train_config", "train"]


def __getattr__(name: str) -> Any:
    if name in ("train", "RunResult"):
        from tooltune.train import sft

        return getattr(sft, name)
    raise AttributeError(f"module 'tooltune.train' has no attribute {name!r}")
