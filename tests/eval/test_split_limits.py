"""Per-split limits: agent-loop splits cost several generations per example, so they get their own."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tooltune.eval.runner import EvalConfig, _read_splits

FIXTURE = Path(__file__).parents[1] / "fixtures" / "train"


def test_split_limits_override_the_common_limit(tmp_path, tiny_base_dir):
    lines = (FIXTURE / "train.jsonl").read_text().splitlines(True)
    assert len(lines) >= 6
    for split in ("test_phrasing", "test_multistep"):
        (tmp_path / f"{split}.jsonl").write_text("".join(lines[:6]))
    config = EvalConfig(model=str(tiny_base_dir), data_dir=tmp_path, splits=["test_phrasing", "test_multistep"], limit=5,
                        split_limits={"test_multistep": 2})
    found, _ = _read_splits(config)
    assert {split: len(examples) for split, examples in found.items()} == {"test_phrasing": 5, "test_multistep": 2}


def test_unknown_split_in_split_limits_is_named(tiny_base_dir):
    with pytest.raises(ValidationError, match="'test_multi'"):
        EvalConfig(model=str(tiny_base_dir), split_limits={"test_multi": 2})
