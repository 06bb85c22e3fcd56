"""``python -m tooltune.api.worker JOB_ID [--register NAME]``: run one training job of the job API.

The API (:mod:`tooltune.api.jobs`) starts one such process per job, in its own session, so the
job outlives an API restart. Everything the API knows about the job comes from the registry
(``$TOOLTUNE_DB_URL``): the worker claims the pending job (``running``, its pid), trains with
:func:`tooltune.train.run_training`, reports step / total, epoch and losses to the registry as
it goes, registers the trained model under ``NAME`` when asked, and finishes the job as
``completed``, ``failed`` (with the reason) or ``cancelled``.

Cancel: SIGTERM (sent by the API's cancel route) and the registry's cancel flag (read with every
progress report) both stop training at once; nothing is saved and the job ends ``cancelled``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from tooltune.errors import RegistryError, TooltuneError

REPORT_EVERY_S = 0.5
"""Progress is written at most this often (and at the start and end): the registry is shared."""
LOSS_KEYS = ("loss", "eval_loss", "grad_norm", "learning_rate")


class JobCancelled(Exception):
    """Raised inside training when the job was cancelled (SIGTERM or the registry's flag)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tooltune.api.worker", description=__doc__.splitlines()[0])
    parser.add_argument("job_id", type=int)
    parser.add_argument("--register", metavar="NAME", help="Register the trained model under NAME.")
    args = parser.parse_args(argv)

    from tooltune.registry import JobStatus, Registry

    stopping = {"armed": True}

    def on_term(signum: int, frame: Any) -> None:
        if stopping["armed"]:
            stopping["armed"] = False
            raise JobCancelled(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    registry = Registry()
    try:
        job = registry.jobs.claim(args.job_id, os.getpid())
    except RegistryError as e:
        job = registry.jobs.get(args.job_id)
        if job.cancel_requested and job.status is JobStatus.PENDING:
            registry.jobs.finish(job.id, JobStatus.CANCELLED)
        print(f"worker: {e}", file=sys.stderr)
        return 1
    try:
        _run(registry, job, args.register)
    except JobCancelled:
        stopping["armed"] = False
        registry.jobs.finish(job.id, JobStatus.CANCELLED)
        print(f"worker: job {job.id} cancelled", file=sys.stderr)
        return 0
    except TooltuneError as e:
        stopping["armed"] = False
        registry.jobs.finish(job.id, JobStatus.FAILED, error=f"{type(e).__name__}: {e}")
        print(f"worker: job {job.id} failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # a bug or a library failure: the job must still end, with the reason
        stopping["armed"] = False
        traceback.print_exc()
        registry.jobs.finish(job.id, JobStatus.FAILED, error=f"{type(e).__name__}: {e} (traceback in the worker log)")
        return 1
    stopping["armed"] = False
    registry.jobs.finish(job.id, JobStatus.COMPLETED)
    print(f"worker: job {job.id} completed", file=sys.stderr)
    return 0


def _run(registry: Any, job: Any, register_as: str | None) -> None:
    from tooltune.train import TrainConfig, run_training

    config = TrainConfig.model_validate(job.config)
    if registry.jobs.report_progress(job.id, step=0, total_steps=config.max_steps, epoch=0.0):
        raise JobCancelled("cancel requested before training started")
    progress = _install_progress(registry, job.id) if config.backend == "hf" else None
    result = run_training(config, progress=False)
    if progress is not None:
        progress.flush()  # the final validation loss is logged after training ends
    if register_as:
        _register(registry, job, config, Path(result.run_dir), register_as)


def _install_progress(registry: Any, job_id: int) -> Any:
    """Add :class:`RegistryProgress` to every Trainer of this process.

    ``tooltune.train.train`` builds its own Trainer and takes no callbacks; transformers adds
    ``DEFAULT_CALLBACKS`` to each Trainer it builds, and this process runs exactly one training."""
    import transformers.trainer as hf_trainer

    callback = _progress_callback(registry, job_id)
    hf_trainer.DEFAULT_CALLBACKS.append(callback)
    return callback


def _progress_callback(registry: Any, job_id: int) -> Any:
    from transformers import TrainerCallback

    class RegistryProgress(TrainerCallback):
        """Writes step / total, epoch and losses to the registry; stops training on a cancel."""

        def __init__(self) -> None:
            self.pending: list[dict[str, Any]] = []
            self.last = 0.0
            self.state: Any = None

        def report(self, state: Any, force: bool = False) -> None:
            now = time.monotonic()
            if not force and now - self.last < REPORT_EVERY_S:
                return
            self.last, self.state = now, state
            cancelled = registry.jobs.report_progress(job_id, step=state.global_step, total_steps=state.max_steps or None,
                                                 epoch=round(state.epoch or 0.0, 4), losses=self.pending)
            self.pending = []
            if cancelled:
                raise JobCancelled("cancel requested")

        def on_train_begin(self, args, state, control, **kwargs):
            self.report(state, force=True)

        def on_step_end(self, args, state, control, **kwargs):
            self.report(state)

        def on_log(self, args, state, control, logs=None, **kwargs):
            values = {k: float(v) for k, v in (logs or {}).items() if k in LOSS_KEYS and isinstance(v, (int, float))}
            if values:
                self.pending.append({"step": state.global_step, "epoch": round(state.epoch or 0.0, 4), **values})

        def on_train_end(self, args, state, control, **kwargs):
            self.report(state, force=True)

        def flush(self) -> None:
            if self.pending and self.state is not None:
                self.report(self.state, force=True)

    return RegistryProgress()


def _register(registry: Any, job: Any, config: Any, run_dir: Path, name: str) -> None:
    from tooltune.registry import ModelKind
    from tooltune.tools.catalog import ToolCatalog

    kind = {"prompt": ModelKind.PROMPT}.get(config.backend) or (ModelKind.FULL if config.method == "full" else ModelKind.ADAPTER)
    try:
        registry.register_model(
            name, kind=kind, base_model=config.base_model, artifact_path=run_dir,
            catalog=ToolCatalog.load(config.catalog_path), config=config, dataset_version=job.dataset_version,
            artifact_hash=artifact_hash(run_dir), job_id=job.id)
    except TooltuneError as e:
        raise type(e)(f"trained into {run_dir}, but registering it as {name!r} failed: {e}") from e


def artifact_hash(run_dir: Path) -> str:
    """SHA-256 over the run's weight files (or its prompt file): two runs are the same model
    exactly when their weights are."""
    digest = hashlib.sha256()
    files = sorted(p for p in run_dir.iterdir() if p.is_file() and p.suffix in (".safetensors", ".bin", ".json")
                   and p.name not in ("manifest.json", "trainer_state.json"))
    for path in files:
        digest.update(path.name.encode())
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


if __name__ == "__main__":
    code = main()
    # The job's state is in the registry now: skip interpreter teardown (torch, tokenizers and
    # datasets threads make it take seconds), so the worker is gone as soon as its job has ended.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
