"""The generation settings are declared once: every config that takes one has its bounds and
description, and eval's keys stay flat."""

import pytest
from pydantic import ValidationError

from tooltune.api.schemas import EvaluationRequest
from tooltune.eval.runner import EvalConfig
from tooltune.runtime.settings import GenerationSettings
from tooltune.serve.settings import ServeSettings
from tooltune.train.config import PromptSettings


def test_configs_share_the_settings_descriptions():
    shared = GenerationSettings.model_fields
    for config in (EvalConfig, ServeSettings, EvaluationRequest):
        for name in ("device", "dtype", "constrained", "tool_listing", "batch_size"):
            if name in config.model_fields:
                assert config.model_fields[name].description == shared[name].description, (config.__name__, name)


@pytest.mark.parametrize("config, fields", [
    (EvalConfig, {"model": "m", "batch_size": 0}),
    (EvalConfig, {"model": "m", "max_new_tokens": 0}),
    (ServeSettings, {"model": "m", "max_new_tokens": 0}),
    (PromptSettings, {"batch_size": 0}),
    (EvaluationRequest, {"model": "a", "dataset": "b", "max_new_tokens": 0}),
    (EvaluationRequest, {"model": "a", "dataset": "b", "max_new_tokens": 4097}),  # the API's own cap
    (EvaluationRequest, {"model": "a", "dataset": "b", "batch_size": 257}),
])
def test_every_config_keeps_the_bounds(config, fields):
    with pytest.raises(ValidationError):
        config(**fields)


def test_eval_config_takes_the_settings_as_flat_keys():
    config = EvalConfig.model_validate({"model": "m", "dtype": "fp32", "tool_listing": "compact", "batch_size": 2})
    assert (config.dtype, config.tool_listing, config.batch_size, config.max_new_tokens) == ("fp32", "compact", 2, 256)
    assert config.model_dump(exclude_unset=True) == {"model": "m", "dtype": "fp32", "tool_listing": "compact", "batch_size": 2}
    with pytest.raises(ValidationError, match="expected auto, fp32, bf16 or fp16"):
        GenerationSettings(dtype="float16")
    # Defaults that differ by use stay as they were: the API evaluates with 128 new tokens.
    assert EvaluationRequest(model="a", dataset="b").max_new_tokens == 128
