"""How a model is placed and generates: the settings ``tooltune eval``, ``eval bfcl``, ``serve``, the
job API and the prompt backend's failure mining share, declared once.

Each setting is an annotated type (its type, bounds and description) and :class:`GenerationSettings`
gathers all six with their defaults. A config that takes all of them inherits the model
(``EvalConfig``, so ``pipeline.yaml``'s ``eval:`` keys stay flat); one that takes a few declares
those with the same types (``ServeSettings`` has no batch size or tool listing of its own), and sets
its own default where its use differs, saying why.

Only pydantic is imported here: the CLI and the API read these without loading torch.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DTYPES = ("auto", "fp32", "bf16", "fp16")

Device = Annotated[str, Field(description="auto (CUDA when available), cpu, cuda, cuda:N.")]
Dtype = Annotated[str, Field(
    description="auto (bf16 where it is faster here: a bf16 GPU, or a CPU with AMX/AVX512-BF16 that the matmul probe "
    "confirms; else fp32; $TOOLTUNE_PRECISION overrides; `tooltune status` shows the choice), fp32, bf16, fp16.")]
BatchSize = Annotated[int, Field(gt=0, description="Prompts generated together (left-padded, sorted by length).")]
MaxNewTokens = Annotated[int, Field(
    gt=0, description="Longest generated turn; longer outputs are cut and marked truncated.")]
Constrained = Annotated[bool, Field(
    description="Decode every turn under the offered tools' grammar (llguidance), so every call parses "
    "(needs the constrained extra).")]
ToolListing = Annotated[Literal["model", "schema", "compact"], Field(
    description="For models on tooltune's built-in template (no tool support of their own, e.g. a SmolLM2 base): "
    "list tools as JSON Schema or compact signatures (TrainConfig.tool_listing). 'model' keeps what the model was "
    "saved with: a run's own listing, schema for a base. Set it to the tuned run's listing to evaluate a base on "
    "the same prompt bytes.")]


class GenerationSettings(BaseModel):
    """Where the model runs, in what precision, and how it generates each turn."""

    model_config = ConfigDict(extra="forbid")

    device: Device = "auto"
    dtype: Dtype = "auto"
    batch_size: BatchSize = 8
    max_new_tokens: MaxNewTokens = 256
    constrained: Constrained = False
    tool_listing: ToolListing = "model"

    @field_validator("dtype")
    @classmethod
    def _known_dtype(cls, value: str) -> str:
        if value not in DTYPES:
            raise ValueError(f"expected auto, fp32, bf16 or fp16, got {value!r}")
        return value


def setting_help(name: str) -> str:
    """The description of generation setting ``name``, for a CLI option's help."""
    return GenerationSettings.model_fields[name].description or ""
