"""The ``hf`` training backend: supervised fine-tuning with TRL's ``SFTTrainer`` and PEFT LoRA.

``train(config)`` reads the split files, tokenizes them with the assistant-only label mask of
:mod:`tooltune.train.dataset`, and hands TRL a Dataset of ``input_ids``/``labels`` (TRL uses a
``labels`` column as is). LoRA is a ``peft.LoraConfig`` passed to ``SFTTrainer``; ``full`` updates
every weight; ``qlora`` loads the base in 4 bits with bitsandbytes.

Run directory (``config.output_dir``)::

    adapter_config.json, adapter_model.safetensors    # lora/qlora: PeftModel.from_pretrained, vLLM --lora-modules
    config.json, model.safetensors, generation_config.json   # full: AutoModelForCausalLM.from_pretrained
    tokenizer.json, tokenizer_config.json, chat_template.jinja (when the tokenizer has one)
    manifest.json     # inputs by content hash, config, final metrics, git commit, wall time, peak memory
    metrics.jsonl     # one line per log/eval event
    checkpoints/checkpoint-N/   # resumable trainer state every save_steps
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import os
import shutil
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from tooltune.data.examples import Example
from tooltune.errors import TrainError
from tooltune.formats.chat import chat_setup, use_tool_listing
from tooltune.tools.catalog import ToolCatalog, content_hash
from tooltune.train import manifest as mf
from tooltune.train.callbacks import MetricsLog, RichProgress, TimeBudget, budget_clock
from tooltune.train.config import TrainConfig
from tooltune.train.dataset import DatasetStats, TokenizedConversation, conversations_dataset, read_split, tokenize_split
from tooltune.runtime.machine import describe_machine
from tooltune.runtime.precision import precision_for
from tooltune.train.prefix_sharing import PrefixSharedCollator, mask_kind, shared_rows, sliding_window
from tooltune.runtime.quiet import settle_transformers

logger = logging.getLogger(__name__)

CHECKPOINTS_DIR = "checkpoints"
METRICS_NAME = "metrics.jsonl"
_TRAINER_STATE = "trainer_state.json"  # written last into a checkpoint: its presence marks it complete


class PackingWarning(UserWarning):
    """Packed examples can attend to each other with this model's attention implementation."""


class RunResult(BaseModel):
    """What :func:`train` produced."""

    run_dir: Path = Field(description="Directory with the adapter or weights, tokenizer, manifest and metrics.")
    method: str = Field(description="lora, qlora or full.")
    global_step: int = Field(description="Optimizer steps done in total (including those before a resume).")
    resumed_from_step: int | None = Field(None, description="Step of the checkpoint this run continued from.")
    stopped_early: bool = Field(False, description="Early stopping ended training before max_steps/epochs.")
    best_checkpoint: str | None = Field(None, description="Checkpoint with the lowest val loss (early stopping on).")
    metrics: dict[str, float] = Field(default_factory=dict, description="Final train_loss, eval_loss, runtime….")
    manifest_path: Path = Field(description="The run's manifest.json.")
    trained_model: Any = Field(None, exclude=True, repr=False,
                               description="The trained model in memory (PeftModel for lora/qlora), as saved.")

    def summary(self) -> dict[str, Any]:
        """JSON-ready facts for the CLI and the pipeline (the model in memory left out)."""
        return {"backend": "hf", **self.model_dump(mode="json")}


def train(config: TrainConfig, *, progress: bool = True) -> RunResult:
    """Fine-tune ``config.base_model`` on ``config.data_dir`` and write the run directory.

    Raises :class:`TrainError` before loading any weights when the method's requirements are
    missing (qlora without CUDA/bitsandbytes), the data is absent, or ``output_dir`` already holds
    a run and ``resume`` is off.
    """
    started = time.perf_counter()
    if config.backend != "hf":
        raise TrainError(
            f"backend: train() runs the hf backend (local TRL/PEFT); got {config.backend!r}. "
            "Use the cloud or prompt backend's own entry point, or set backend: hf."
        )
    config = config.resolved()
    # max_minutes counts loading and tokenizing, not a pypi: model's one-time dequantizing just above.
    budget_start = budget_clock() if config.max_minutes is not None else None
    check_requirements(config)
    # Under torchrun/accelerate launch every process runs this function; only the main one checks
    # and cleans the run dir (and writes files below), so that no rank sees another's fresh files.
    if _is_main_process():
        resume_from = _prepare_run_dir(config)
    else:
        resume_from = latest_checkpoint(config.output_dir) if config.resume else None
    data = _read_data(config)

    settle_transformers()
    tokenizer = _load_tokenizer(config)
    data.tokenize(tokenizer, config)
    model, commit_hash = _load_model(config)
    trainer, metrics_log, bar = _build_trainer(config, model, tokenizer, data, progress=progress, budget_start=budget_start)

    resumed_step = _checkpoint_step(resume_from) if resume_from else None
    try:
        with _quiet_datasets(), cpu_compact_lm_head():
            output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    finally:
        if bar is not None:
            bar.close()
    metrics = _numbers(output.metrics)
    if data.eval_ds is not None:  # final val loss of the saved model (the best one with early stopping)
        trainer.remove_callback(metrics_log)  # metrics.jsonl already has the in-training evaluations
        with _quiet_datasets(), cpu_compact_lm_head():
            metrics.update(_numbers(trainer.evaluate()))
    trainer.save_model(str(config.output_dir))  # every rank calls it (FSDP gathers); only the main one writes
    setup = chat_setup(tokenizer)
    state = trainer.state
    stopped_early = bool(data.early_stopping(config) and state.global_step < state.max_steps)
    best = _relative(state.best_model_checkpoint, config.output_dir)
    manifest_path = config.output_dir / mf.MANIFEST_NAME
    result = RunResult(
        run_dir=config.output_dir, method=config.method, global_step=state.global_step,
        resumed_from_step=resumed_step, stopped_early=stopped_early, best_checkpoint=best, metrics=metrics,
        manifest_path=manifest_path, trained_model=trainer.model,
    )
    if not trainer.is_world_process_zero():
        return result
    if setup.builtin:
        # Save the template training actually used, so the run dir renders the trained bytes
        # anywhere (tooltune recognises its built-in template on reload; vLLM can use it as is).
        tokenizer.chat_template = setup.template
        tokenizer.save_pretrained(str(config.output_dir))

    mf.write_manifest(config.output_dir, {
        "base_model": mf.base_model_identity(config.base_model, config.base_revision, commit_hash),
        "method": config.method,
        "backend": config.backend,
        "catalog": {"path": str(config.catalog_path), "hash": data.catalog.hash} if data.catalog is not None else None,
        "data": data.summary(config),
        "chat": {
            # Serving renders with the run dir's tokenizer through tooltune.formats.chat.render_chat;
            # builtin_template=True means the base had no tool template and tooltune's was saved.
            "builtin_template": setup.builtin,
            "template_hash": content_hash(setup.template),
            "arguments_style": setup.arguments_style,
            "call_format": setup.call_format.name,
        },
        "config": config.model_dump(mode="json"),
        "training": {
            "global_step": state.global_step, "max_steps": state.max_steps, "resumed_from_step": resumed_step,
            "stopped_early": stopped_early, "best_checkpoint": best, "best_eval_loss": state.best_metric,
            "time_budget": _budget_summary(trainer),
        },
        "metrics": metrics,
        "git": mf.git_state(),
        "wall_time_s": round(time.perf_counter() - started, 2),
        "world_size": trainer.args.world_size,
        "machine": {**describe_machine().model_dump(), "precision": _precision(config)},
        **mf.peak_memory(),
        "versions": mf.library_versions(),
    })
    return result


@dataclass
class _Data:
    """The run's examples and catalog, their tokenized conversations, then the Datasets the trainer reads."""

    train_path: Path
    val_path: Path
    train_examples: list[Example]
    val_examples: list[Example]
    catalog: ToolCatalog | None
    train_conversations: list[TokenizedConversation] = field(default_factory=list)
    val_conversations: list[TokenizedConversation] = field(default_factory=list)
    train_ds: Any = None
    eval_ds: Any = None
    train_stats: DatasetStats = field(default_factory=DatasetStats)
    val_stats: DatasetStats = field(default_factory=DatasetStats)
    sharing: dict[str, Any] = field(default_factory=dict)
    """How rows were made: prefix-shared (and what it saved) or not, and why."""

    def tokenize(self, tokenizer: Any, config: TrainConfig) -> None:
        self.train_conversations, self.train_stats = tokenize_split(
            tokenizer, self.train_examples, self.catalog, max_length=config.max_length, where=str(self.train_path))
        if self.train_stats.examples == 0:
            raise TrainError(
                f"{self.train_path}: all {len(self.train_examples)} examples are longer than max_length "
                f"({config.max_length} tokens); raise max_length."
            )
        if self.val_examples:
            self.val_conversations, self.val_stats = tokenize_split(
                tokenizer, self.val_examples, self.catalog, max_length=config.max_length, where=str(self.val_path))
        if not self.val_conversations and config.early_stopping_patience is not None:
            warnings.warn(f"{self.val_path}: no validation examples, so no evaluation and no early stopping.",
                          UserWarning, stacklevel=3)

    def make_datasets(self, config: TrainConfig, shared: bool) -> None:
        """One conversation per row, or prefix-shared rows (see :mod:`tooltune.train.prefix_sharing`)."""
        from datasets import Dataset

        if not shared:
            self.train_ds = conversations_dataset(self.train_conversations)
            self.eval_ds = conversations_dataset(self.val_conversations) if self.val_conversations else None
            return
        rows, stats = shared_rows(self.train_conversations, config.max_length, seed=config.seed)
        self.train_ds = Dataset.from_dict(rows)
        self.eval_ds = Dataset.from_dict(shared_rows(self.val_conversations, config.max_length, seed=config.seed)[0]) \
            if self.val_conversations else None
        self.sharing.update(stats.as_dict())
        logger.info("prefix sharing: %d conversations in %d rows under %d shared prefixes; %.2fx fewer tokens to read",
                    stats.conversations, stats.rows, stats.prefixes, stats.saving)

    def early_stopping(self, config: TrainConfig) -> bool:
        return self.eval_ds is not None and config.early_stopping_patience is not None

    def summary(self, config: TrainConfig) -> dict[str, Any]:
        def split(examples: list[Example], stats: DatasetStats) -> dict[str, int]:
            return {"examples": len(examples), "trained_examples": stats.examples,
                    "skipped_too_long": stats.skipped_too_long, "tokens": stats.tokens,
                    "trained_tokens": stats.trained_tokens}

        return {
            "dir": str(config.data_dir),
            "hash": mf.dataset_hash([e.id for e in self.train_examples], [e.id for e in self.val_examples]),
            "train": split(self.train_examples, self.train_stats),
            "val": split(self.val_examples, self.val_stats),
            "rows": self.sharing,
        }


def _read_data(config: TrainConfig) -> _Data:
    train_path, val_path = config.data_dir / "train.jsonl", config.data_dir / "val.jsonl"
    val = read_split(val_path, required=False)
    return _Data(train_path, val_path, read_split(train_path), val[:config.val_limit] if config.val_limit else val,
                 _load_catalog(config))


def _build_trainer(config: TrainConfig, model: Any, tokenizer: Any, data: _Data, *, progress: bool,
                   budget_start: float | None = None):
    from transformers import EarlyStoppingCallback
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl import SFTTrainer

    kind = _sharing_kind(config, model, data)
    data.make_datasets(config, shared=kind is not None)
    metrics_log = MetricsLog(config.output_dir / METRICS_NAME)
    bar = RichProgress() if progress else None
    callbacks: list[Any] = [metrics_log, *([bar] if bar else [])]
    early_stopping = data.early_stopping(config)
    if early_stopping:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
    if config.max_minutes is not None:
        callbacks.append(TimeBudget(config.max_minutes, started=budget_start))
    shared: dict[str, Any] = {}
    if kind is not None:
        # Rows are made here, whole: TRL must not re-pack or drop the position/segment columns.
        shared = {"data_collator": PrefixSharedCollator(tokenizer.pad_token_id, kind, _compute_dtype(model),
                                                        sliding_window=sliding_window(model))}
    with _quiet_datasets(), warnings.catch_warnings():
        # PEFT reads model.is_gradient_checkpointing, which transformers 5.23 deprecates: not actionable here.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        trainer = (_prefix_shared_trainer() if kind is not None else SFTTrainer)(
            model=model,
            args=_sft_args(config, has_eval=data.eval_ds is not None, early_stopping=early_stopping,
                           shared_rows=kind is not None),
            train_dataset=data.train_ds,
            eval_dataset=data.eval_ds,
            processing_class=tokenizer,
            peft_config=_lora_config(config, model) if config.method != "full" else None,
            callbacks=callbacks,
            **shared,
        )
    trainer.remove_callback(PrinterCallback)  # prints every log dict to stdout; metrics go to metrics.jsonl
    trainer.remove_callback(ProgressCallback)
    if config.packing and kind is None and not packing_isolates_examples(trainer.model):
        warnings.warn(
            f"packing: {type(trainer.model).__name__} with attn_implementation="
            f"{trainer.model.config._attn_implementation!r} lets packed examples attend to each other (the packed "
            "position_ids did not isolate them in a probe). Set packing: false, or use an attention implementation "
            "that supports packed sequences (sdpa, eager, flash_attention_2).",
            PackingWarning,
            stacklevel=3,
        )
    return trainer, metrics_log, bar


def _budget_summary(trainer: Any) -> dict[str, Any] | None:
    """What a ``max_minutes`` budget chose (steps, measured step time), or None without one."""
    budget = next((c for c in trainer.callback_handler.callbacks if isinstance(c, TimeBudget)), None)
    return budget.summary() if budget is not None else None


def _sharing_kind(config: TrainConfig, model: Any, data: _Data) -> str | None:
    """The block-mask kind prefix-shared rows use with ``model``, or None for plain rows (and why, in the log)."""
    if not (config.packing and config.prefix_sharing):
        data.sharing = {"prefix_sharing": False, "why": "packing is off" if not config.packing else "prefix_sharing: false"}
        return None
    kind, why = mask_kind(model)
    data.sharing = {"prefix_sharing": kind is not None, "why": why}
    if kind is None:
        logger.warning("prefix sharing off: %s", why)
    return kind


def _compute_dtype(model: Any) -> Any:
    return next(p for p in model.parameters() if p.is_floating_point()).dtype


@functools.cache
def _prefix_shared_trainer():
    """The SFTTrainer subclass for prefix-shared rows (made on first use: TRL imports slowly)."""
    from trl import SFTTrainer

    class PrefixSharedTrainer(SFTTrainer):
        """TRL's SFTTrainer fed prefix-shared rows. One override, for the throughput log only: TRL
        counts a batch's tokens as ``attention_mask.sum()``, which for a 4D block mask counts attended
        pairs, not tokens; the collator passes the real count as ``num_tokens``."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            import torch

            tokens = inputs.pop("num_tokens", None)
            before = self._total_train_tokens
            result = super().compute_loss(model, inputs, return_outputs=return_outputs,
                                          num_items_in_batch=num_items_in_batch)
            if tokens is not None and model.training:
                counted = self.accelerator.gather_for_metrics(torch.tensor(tokens, device=self.args.device)).sum().item()
                self._total_train_tokens = before + counted
                self._metrics["train"]["num_tokens"] = [self._total_train_tokens]
            return result

    return PrefixSharedTrainer


def check_requirements(config: TrainConfig) -> None:
    """Fail with what to do when the method cannot run here; loads nothing."""
    if config.method != "qlora" and config.precision != "fp16":
        return
    import torch

    if config.precision == "fp16" and not torch.cuda.is_available():
        raise TrainError("precision: fp16 mixed precision needs a CUDA GPU; none is visible. Use precision: auto.")
    if config.method == "qlora":
        missing = []
        if not torch.cuda.is_available():
            missing.append("a CUDA GPU (torch.cuda.is_available() is False)")
        if importlib.util.find_spec("bitsandbytes") is None:
            missing.append("the bitsandbytes package (pip install bitsandbytes)")
        if missing:
            raise TrainError(
                f"method: qlora loads the base model in 4 bits and needs {' and '.join(missing)}. "
                "Use method: lora (same adapter, unquantized base) on this machine, or train on a CUDA machine."
            )


def packing_isolates_examples(model: Any) -> bool:
    """Probe whether packed sequences (restarting ``position_ids``, no attention mask, as TRL's
    padding-free collator feeds them) are isolated: the second sequence's logits must match a
    separate forward pass far more closely than the same tokens run without position ids do."""
    import torch

    vocab = model.config.get_text_config().vocab_size
    gen = torch.Generator().manual_seed(0)
    first, second = torch.randint(0, vocab, (1, 7), generator=gen), torch.randint(0, vocab, (1, 5), generator=gen)
    device = next(model.parameters()).device
    packed = torch.cat([first, second], dim=1).to(device)
    positions = torch.cat([torch.arange(7), torch.arange(5)])[None].to(device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            alone = model(input_ids=second.to(device), use_cache=False).logits.float()
            isolated = model(input_ids=packed, position_ids=positions, use_cache=False).logits[:, 7:].float()
            leaked = model(input_ids=packed, use_cache=False).logits[:, 7:].float()
    finally:
        model.train(was_training)
    leak = (leaked - alone).abs().max().item()
    return (isolated - alone).abs().max().item() <= 0.1 * leak if leak > 0 else True


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint under ``run_dir/checkpoints`` (one with its trainer state)."""
    root = run_dir / CHECKPOINTS_DIR
    if not root.is_dir():
        return None
    complete = [p for p in root.glob("checkpoint-*") if p.is_dir() and (p / _TRAINER_STATE).is_file()
                and p.name.removeprefix("checkpoint-").isdigit()]
    return max(complete, key=_checkpoint_step, default=None)


def _prepare_run_dir(config: TrainConfig) -> Path | None:
    run_dir = config.output_dir
    if not config.resume:
        used = [p.name for p in (run_dir / CHECKPOINTS_DIR, run_dir / mf.MANIFEST_NAME, run_dir / METRICS_NAME) if p.exists()]
        if used:
            raise TrainError(
                f"{run_dir}: already holds a run ({', '.join(used)}). Set resume: true to continue it, "
                "or choose another output_dir (or delete this one)."
            )
        return None
    last = latest_checkpoint(run_dir)
    root = run_dir / CHECKPOINTS_DIR
    # A kill during a save leaves a checkpoint without trainer state; a later save of that step needs the name.
    for partial in root.glob("checkpoint-*") if root.is_dir() else []:
        if partial.is_dir() and not (partial / _TRAINER_STATE).is_file():
            logger.warning("removing incomplete checkpoint %s (interrupted while saving)", partial)
            shutil.rmtree(partial)
    if last is None:
        logger.warning("%s: resume is set but there is no complete checkpoint; starting from step 0", run_dir)
    return last


def _is_main_process() -> bool:
    """Rank 0, or not launched as several processes (torchrun and accelerate launch set RANK)."""
    return int(os.environ.get("RANK", "0")) == 0


def _multi_process_on_cpu() -> bool:
    """Launched as several processes on a machine without CUDA: the Trainer must be told use_cpu,
    or accelerate finds no GPU backend and every process trains alone on the whole data."""
    import torch

    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()


def _checkpoint_step(path: Path) -> int:
    return int(Path(path).name.removeprefix("checkpoint-"))


def _load_catalog(config: TrainConfig) -> ToolCatalog | None:
    # An unset catalog whose default file is absent is fine when examples carry inline tools;
    # examples that name catalog tools then fail with DataError naming the example.
    if config.catalog is None and not config.catalog_path.is_file():
        return None
    return ToolCatalog.load(config.catalog_path)


def _load_tokenizer(config: TrainConfig):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(config.base_model, revision=config.base_revision)
    except (OSError, ValueError) as e:
        raise TrainError(f"base_model: cannot load the tokenizer of {config.base_model!r}: {e}") from e
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    use_tool_listing(tokenizer, config.tool_listing)
    return tokenizer


def _precision(config: TrainConfig) -> str:
    """bf16 only where it is faster here for this model's width (tooltune.runtime.precision); an
    explicit bf16 on a CPU that runs it slower warns."""
    return precision_for(config.precision, config.base_model, revision=config.base_revision)


def _load_model(config: TrainConfig):
    """The base model and its hub commit hash (None for local weights)."""
    import torch
    from transformers import AutoModelForCausalLM

    precision = _precision(config)
    kwargs: dict[str, Any] = {"revision": config.base_revision}
    if config.method == "full":
        kwargs["dtype"] = torch.float32  # optimizer updates need fp32 master weights; autocast does the rest
    else:
        kwargs["dtype"] = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    if config.method == "qlora":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.float16 if precision == "fp16" else torch.bfloat16,
        )
        kwargs["device_map"] = {"": torch.cuda.current_device()}
    try:
        model = AutoModelForCausalLM.from_pretrained(config.base_model, **kwargs)
    except (OSError, ValueError) as e:
        raise TrainError(f"base_model: cannot load {config.base_model!r}: {e}") from e
    commit_hash = getattr(model.config, "_commit_hash", None)
    if config.method == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing)
    return model, commit_hash


def _lora_config(config: TrainConfig, model: Any):
    from peft import LoraConfig

    lora = config.lora
    layers: dict[str, Any] = {"target_modules": lora.target_modules}
    if lora.top_layers is not None:
        total = model.config.get_text_config().num_hidden_layers
        if lora.top_layers > total:
            raise TrainError(f"lora.top_layers: {lora.top_layers} is more than the model's {total} layers; "
                             f"set at most {total}, or null for every layer.")
        # PEFT takes layer indices only with named modules, so "all-linear" is spelled out first.
        layers = {"layers_to_transform": list(range(total - lora.top_layers, total)),
                  "target_modules": _linear_names(model) if lora.target_modules == "all-linear" else lora.target_modules}
    return LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, bias="none", task_type="CAUSAL_LM", **layers,
    )


def _linear_names(model: Any) -> list[str]:
    """Names of the linear projections "all-linear" means: every nn.Linear but the output head."""
    import torch

    head = model.get_output_embeddings()
    return sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                   if isinstance(module, torch.nn.Linear) and module is not head})


def _sft_args(config: TrainConfig, *, has_eval: bool, early_stopping: bool, shared_rows: bool = False):
    import torch
    from trl import SFTConfig

    precision = _precision(config)
    return SFTConfig(
        output_dir=str(config.output_dir / CHECKPOINTS_DIR),
        learning_rate=config.effective_learning_rate,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps if config.max_steps is not None else -1,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        warmup_steps=config.warmup_ratio,  # transformers 5: a float < 1 is a fraction of the total steps
        lr_scheduler_type="cosine",
        max_length=config.max_length,
        packing=config.packing and not shared_rows,
        packing_strategy="bfd",  # padding-free: one row per batch, examples separated by position_ids
        # Prefix-shared rows come packed, with their own position and segment columns and collator.
        dataset_kwargs={"skip_prepare_dataset": True} if shared_rows else None,
        remove_unused_columns=not shared_rows,
        # Without packing, batch examples of similar length (random megabatches of 50 batches, each sorted by
        # length): tool listings make lengths vary ~5x, and random batches spent ~35% of their tokens on padding
        # (benchmarks/train_throughput.py: ~3x tokens/s on CPU).
        train_sampling_strategy="random" if config.packing else "group_by_length",
        assistant_only_loss=False,  # our labels column already masks everything but assistant turns
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        # transformers 5.23 renamed gradient_checkpointing; TRL still sets the old name, so set the new one.
        activation_checkpointing=config.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if config.gradient_checkpointing else None,
        dataloader_pin_memory=torch.cuda.is_available(),
        # DDP over gloo needs it; so does bf16 autocast on a CPU (transformers refuses bf16 without it).
        use_cpu=_multi_process_on_cpu() or (precision == "bf16" and not torch.cuda.is_available()),
        seed=config.seed,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=config.eval_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        load_best_model_at_end=early_stopping,
        metric_for_best_model="eval_loss" if early_stopping else None,
        greater_is_better=False if early_stopping else None,
        logging_steps=config.logging_steps,
        logging_first_step=True,
        disable_tqdm=True,
        report_to="none",
    )


@contextlib.contextmanager
def _quiet_datasets():
    """Hide datasets' tqdm bars (TRL maps over our already-tokenized rows) for the duration."""
    import datasets

    was_disabled = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()


@contextlib.contextmanager
def cpu_compact_lm_head() -> Iterator[None]:
    """Make TRL's fused LM head score only the labelled positions on CPU too, while inside.

    TRL 1.16's ``SFTTrainer`` computes the loss with a fused, chunked LM head
    (``trl.trainer.utils.add_fused_lm_head``). On Triton devices it projects only the positions
    that carry a label; elsewhere it projects every position, to keep tile shapes static for
    compilers such as Neuron's. With tooltune's assistant-only labels (~20% of the tokens) that
    makes a CPU step ~1.75x slower for the tiny base model; :func:`train` therefore
    always runs inside this context (on GPUs it changes nothing). The loss and gradients are the same
    either way: unlabelled positions contribute zero (``tests/train/test_base.py`` checks it).
    A no-op when TRL's internals have moved on.
    """
    try:
        from trl.trainer import utils as trl_utils
    except ImportError:  # pragma: no cover - trl is a dependency
        yield
        return
    original = getattr(trl_utils, "_use_triton", None)
    if original is None:
        yield
        return
    # The name only decides compaction in _fused_forward; the kernel module keeps its own copy
    # and still picks the torch fallback on CPU.
    trl_utils._use_triton = lambda device: original(device) or device.type == "cpu"
    try:
        yield
    finally:
        trl_utils._use_triton = original



def _numbers(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}


def _relative(path: str | None, root: Path) -> str | None:
    if not path:
        return None
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)
