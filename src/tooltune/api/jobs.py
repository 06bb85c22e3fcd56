"""Training jobs of the API: one worker process per job, supervised through the registry.

``JobSupervisor.create`` records a pending job and starts ``python -m tooltune.api.worker`` for
it in a new session (so stopping the API leaves it running); the worker claims the job and
reports progress to the registry. All state is in the registry, so a restarted API carries on:
its supervisor thread checks every active job's worker by pid (a recycled pid is not mistaken
for it: the process must be that job's worker) and marks a job whose worker is gone ``failed``
with the reason. A cancel sets the registry's flag and sends the worker SIGTERM; a worker still
alive ``cancel_grace_s`` later is killed and the job marked ``cancelled``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil

from tooltune.api.settings import ApiSettings
from tooltune.errors import ConfigError, RegistryError
from tooltune.registry import JobRecord, JobStatus, Registry
from tooltune.registry.engine import URL_ENV
from tooltune.train.config import TrainConfig

WORKER_MODULE = "tooltune.api.worker"
SPAWN_WINDOW_S = 30.0
"""A pending job without a worker pid this old was never started (the API stopped in between)."""


class JobSupervisor:
    """Starts, watches and cancels the workers of one registry's training jobs."""

    def __init__(self, registry: Registry, settings: ApiSettings):
        self.registry = registry
        self.settings = settings
        self.children: dict[int, subprocess.Popen] = {}
        self.kill_at: dict[int, float] = {}
        self.exit_codes: dict[int, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self.check()  # jobs whose worker died while no API was running fail now, not a poll later
        self._thread = threading.Thread(target=self._loop, name="tooltune-job-supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching; workers keep running (a restarted API picks them up)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.poll_s):
            try:
                self.check()
            except Exception as e:  # a database hiccup must not end supervision
                print(f"tooltune api: job check failed: {type(e).__name__}: {e}", file=sys.stderr)

    # ---- jobs ---------------------------------------------------------------------------------

    def create(self, config: TrainConfig, register_as: str | None = None) -> JobRecord:
        """Record a pending job for ``config`` and start its worker."""
        config = _absolute_paths(config, self.settings.work_dir)
        if config.backend != "cloud" and not (config.data_dir / "train.jsonl").is_file():
            raise ConfigError(f"data_dir: {config.data_dir} has no train.jsonl; point it at a data build "
                              "(POST /v1/datasets builds one).")
        dataset = next((d for d in self.registry.list_datasets() if Path(d.path).resolve() == config.data_dir), None)
        job = self.registry.jobs.start(config=config, run_dir=config.output_dir, queued=True,
                                      dataset_version=dataset.version if dataset else None)
        log = self.log_path(job.id)
        log.parent.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", WORKER_MODULE, str(job.id), *(["--register", register_as] if register_as else [])]
        env = {**os.environ, URL_ENV: self.registry.engine.url.render_as_string(hide_password=False)}
        with log.open("ab") as out:
            child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        with self._lock:
            self.children[job.id] = child
        try:
            return self.registry.jobs.set_worker(job.id, child.pid)
        except RegistryError:  # the worker claimed and finished it already
            return self.registry.jobs.get(job.id)

    def log_path(self, job_id: int) -> Path:
        """The worker's stdout and stderr."""
        return (self.settings.work_dir / "logs" / f"job-{job_id}.log").resolve()

    def cancel(self, job_id: int) -> JobRecord:
        """Ask the job to stop now; the next check kills a worker that has not stopped in time."""
        job = self.registry.jobs.request_cancel(job_id)
        with self._lock:
            self.kill_at.setdefault(job_id, time.monotonic() + self.settings.cancel_grace_s)
        if job.worker_pid is not None and worker_alive(job.worker_pid, job_id):
            _signal(job.worker_pid, signal.SIGTERM)
        return job

    def check(self) -> None:
        """One pass over the active jobs: fail those whose worker is gone, kill overdue cancels."""
        with self._lock:
            for job_id, child in list(self.children.items()):
                if child.poll() is not None:  # reap, so the pid stops looking alive
                    del self.children[job_id]
                    self.exit_codes[job_id] = child.returncode
        for job in self.registry.jobs.active():
            self._check_one(job)

    def _check_one(self, job: JobRecord) -> None:
        alive = job.worker_pid is not None and worker_alive(job.worker_pid, job.id)
        if alive:
            if job.cancel_requested:
                with self._lock:
                    deadline = self.kill_at.setdefault(job.id, time.monotonic() + self.settings.cancel_grace_s)
                if time.monotonic() >= deadline:
                    _signal(job.worker_pid, signal.SIGKILL)
            return
        if job.worker_pid is None and _age_s(job) < SPAWN_WINDOW_S:
            return  # being started right now
        if job.cancel_requested:
            try:
                self.registry.jobs.finish(job.id, JobStatus.CANCELLED,
                                         error="the worker did not stop in time and was killed")
            except RegistryError:
                pass  # the worker finished it itself just now
            return
        self.registry.jobs.fail_if_active(job.id, self._death_reason(job))

    def _death_reason(self, job: JobRecord) -> str:
        if job.worker_pid is None:
            return "no worker was started for this job (the API stopped before starting it); create the job again."
        code = self.exit_codes.get(job.id)
        how = ("was killed by signal " + signal.Signals(-code).name if code is not None and code < 0
               else f"exited with code {code}" if code is not None else "is gone (killed or crashed)")
        log = self.log_path(job.id)
        tail = _last_line(log)
        return (f"worker process {job.worker_pid} {how} before finishing the job"
                + (f"; last log line: {tail}" if tail else "") + f". Full log: {log}")


def worker_alive(pid: int, job_id: int) -> bool:
    """Whether ``pid`` is a live worker process of job ``job_id`` (not a zombie, not another program)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        cmdline = process.cmdline()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # exists, but not ours to inspect: assume it is the worker
    return WORKER_MODULE in cmdline and str(job_id) in cmdline


def eta_seconds(job: JobRecord) -> float | None:
    """Seconds left at the pace so far (None until a step is done and the total is known)."""
    if job.status is not JobStatus.RUNNING or not job.total_steps or job.step <= 0 or job.started_at is None:
        return None
    elapsed = (job.updated_at - job.started_at).total_seconds()
    return round(max(0.0, elapsed / job.step * (job.total_steps - job.step)), 1)


def _absolute_paths(config: TrainConfig, work_dir: Path) -> TrainConfig:
    """Resolve paths once, here: the worker and the records must not depend on a working directory.
    A job without its own output_dir gets a fresh one under ``work_dir/jobs``."""
    update: dict[str, Path] = {"data_dir": config.data_dir.resolve()}
    if config.catalog is not None:
        update["catalog"] = config.catalog.resolve()
    if "output_dir" in config.model_fields_set:
        update["output_dir"] = config.output_dir.resolve()
    else:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        update["output_dir"] = (work_dir / "jobs" / f"{stamp}-{os.urandom(3).hex()}" / "run").resolve()
    return config.model_copy(update=update)


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _age_s(job: JobRecord) -> float:
    return (datetime.now(timezone.utc) - job.created_at).total_seconds()


def _last_line(path: Path) -> str | None:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return None
    return lines[-1][-300:] if lines else None
