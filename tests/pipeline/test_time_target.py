"""``max_minutes`` on the pipeline: training gets what the run's target leaves after the time
spent, the candidate's evaluation (estimated from the base's, measured) and a margin."""

from __future__ import annotations

import json
import logging
import time

import pytest

from tooltune.pipeline.cache import DONE
from tooltune.pipeline.config import PipelineConfig
from tooltune.pipeline.run import CANDIDATE_EVAL_FACTOR, MIN_TRAIN_MINUTES, TAIL_S, training_minutes


def _config(max_minutes, train_minutes=None):
    train = {"base_model": "some/model", **({"max_minutes": train_minutes} if train_minutes else {})}
    return PipelineConfig.model_validate({"services": [{"mcp_stdio": "x"}], "train": train,
                                          **({"max_minutes": max_minutes} if max_minutes else {})})


def _base_eval(tmp_path, **summary):
    out = tmp_path / "eval-base-key"
    out.mkdir()
    (out / DONE).write_text(json.dumps({"exact_match": 0.2, "n": 40, **summary}))
    return out


def test_training_gets_what_the_target_leaves_after_both_evaluations(tmp_path):
    # 10 minutes, 60 s already spent, the base evaluation took 80 s: the candidate's is estimated at
    # 100 s, 30 s are kept for compare/gate/register, and training gets the rest.
    minutes = training_minutes(_config(10), time.monotonic() - 60, _base_eval(tmp_path, seconds=80))
    expected = (600 - 60 - CANDIDATE_EVAL_FACTOR * 80 - TAIL_S) / 60
    assert minutes == pytest.approx(expected, abs=0.02)


def test_train_max_minutes_caps_the_budget_and_no_target_keeps_it(tmp_path):
    base_eval = _base_eval(tmp_path, seconds=80)
    assert training_minutes(_config(60, train_minutes=5), time.monotonic(), base_eval) == 5
    assert training_minutes(_config(None, train_minutes=5), time.monotonic(), base_eval) is None


def test_a_target_that_leaves_no_time_trains_the_floor_and_says_the_run_ends_late(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="tooltune.pipeline.run"):
        minutes = training_minutes(_config(2), time.monotonic() - 60, _base_eval(tmp_path, seconds=100))
    assert minutes == MIN_TRAIN_MINUTES
    assert "end late" in caplog.text


def test_a_base_evaluation_cached_before_its_time_was_recorded_is_timed_by_its_run_json(tmp_path, caplog):
    base_eval = _base_eval(tmp_path)  # a summary without "seconds", as older pipelines wrote it
    (base_eval / "run.json").write_text(json.dumps({"wall_s": 80.0}))
    minutes = training_minutes(_config(10), time.monotonic() - 60, base_eval)
    assert minutes == pytest.approx((600 - 60 - CANDIDATE_EVAL_FACTOR * 80 - TAIL_S) / 60, abs=0.02)
    (base_eval / "run.json").unlink()
    with caplog.at_level(logging.WARNING, logger="tooltune.pipeline.run"):
        assert training_minutes(_config(10, train_minutes=7), time.monotonic(), base_eval) == 7
    assert "recorded no time" in caplog.text


def test_the_target_must_be_positive():
    with pytest.raises(ValueError, match="max_minutes"):
        _config(-1)
