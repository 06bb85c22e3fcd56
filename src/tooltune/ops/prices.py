"""The price table of ``tooltune plan``: a documented, user-editable YAML file.

The packaged table (``prices.yaml`` beside this module) holds *example* prices; every number is
an input of the plan, never a claim. ``load_prices(path)`` reads a user's copy; errors name the
file and the field.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from tooltune.errors import ConfigError
from tooltune.safeload import load_config

DEFAULT_PRICES = Path(__file__).with_name("prices.yaml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PromptPrices(_Strict):
    input_per_mtok: float = Field(ge=0, description="Price per 1M input (prompt) tokens of the base model.")
    output_per_mtok: float = Field(ge=0, description="Price per 1M output tokens of the base model.")


class FineTuningPrices(_Strict):
    training_per_mtok: float = Field(ge=0, description="Price per 1M training tokens (billed once per epoch).")
    input_per_mtok: float = Field(ge=0, description="Price per 1M input tokens of the fine-tuned model.")
    output_per_mtok: float = Field(ge=0, description="Price per 1M output tokens of the fine-tuned model.")
    hosting_per_month: float = Field(0.0, ge=0, description="Fixed monthly fee for keeping the fine-tuned model available.")


class Provider(_Strict):
    note: str = Field("", description="Where the numbers come from (say when you edit them).")
    model: str = Field(description="The base model these prices are for.")
    prompt: PromptPrices
    fine_tuning: FineTuningPrices | None = Field(None, description="Leave out when the provider offers no fine-tuning.")


class LocalPrices(_Strict):
    note: str = ""
    gpu_per_hour: float = Field(ge=0, description="Cost of one GPU hour (rented, or your amortized hardware and power).")
    tokens_per_second: float = Field(gt=0, description="Prompt + output tokens the GPU processes per second when serving.")
    min_hours_per_month: float = Field(0.0, ge=0, le=744, description="GPU hours paid each month regardless of traffic (730: always on).")
    training_hours: float = Field(ge=0, description="GPU hours of one LoRA training run.")


class Assumptions(_Strict):
    epochs: int = Field(3, ge=1, le=100, description="Epochs a fine-tuning run bills.")
    few_shot_examples: int = Field(8, ge=0, le=64, description="Worked examples in a prompt-only context.")
    amortize_months: int = Field(12, ge=1, le=120, description="Months one-time training costs are spread over.")
    prompt_only_accuracy: float | None = Field(None, ge=0, le=1, description="Measured tool-call accuracy of prompt-only (None: unknown).")
    fine_tuned_accuracy: float | None = Field(None, ge=0, le=1, description="Measured accuracy of the cloud fine-tune (None: unknown).")
    local_lora_accuracy: float | None = Field(None, ge=0, le=1, description="Measured accuracy of the local LoRA model (None: unknown).")


class PriceTable(_Strict):
    source: str = Field(description="Where the prices come from; shown with every plan.")
    as_of: str = Field(description="When they were copied.")
    currency: str = "USD"
    providers: dict[str, Provider] = Field(min_length=1)
    local: LocalPrices
    assumptions: Assumptions = Field(default_factory=Assumptions)


def load_prices(path: str | Path | None = None) -> PriceTable:
    """The price table at ``path`` (default: the packaged example table)."""
    try:
        return load_config(PriceTable, Path(path) if path is not None else DEFAULT_PRICES)
    except ConfigError as e:
        raise ConfigError(f"{e}\nCompare with the documented example: {DEFAULT_PRICES}.") from e
