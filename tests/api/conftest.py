"""Job API fixtures: the tiny random Llama, a dataset directory, real ``tooltune api`` processes on
127.0.0.1 (uvicorn), and in-process ``TestClient`` apps, over SQLite or PostgreSQL."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.registry.conftest import _pg_admin, _pg_schema, pg_admin_url  # noqa: F401 (pg_admin_url is a fixture)
from tests.train.conftest import TRAIN_DATA, save_tiny_model

TOKEN = "test-token"
START_S = 240  # a cold `tooltune api` imports FastAPI, SQLAlchemy, pydantic models: slow on a busy machine
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# One torch thread in every worker: the test machine's few cores are shared.
WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("api_tiny_llama"))


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """The training fixture plus a test_phrasing split (its train and val examples) for evaluations."""
    out = tmp_path_factory.mktemp("api_data")
    for name in ("train.jsonl", "val.jsonl", "catalog.json"):
        shutil.copy(TRAIN_DATA / name, out / name)
    (out / "test_phrasing.jsonl").write_text((TRAIN_DATA / "train.jsonl").read_text() + (TRAIN_DATA / "val.jsonl").read_text())
    return out


@pytest.fixture
def job_config(tiny_model, data_dir):
    """Factory: a TrainConfig body training the tiny model for ``max_steps`` steps (a few per second)."""

    def make(max_steps: int, **overrides) -> dict:
        return {"base_model": str(tiny_model), "data_dir": str(data_dir), "max_steps": max_steps, "batch_size": 2,
                "grad_accum": 1, "eval_steps": 10_000, "save_steps": 10_000, "early_stopping_patience": None,
                "logging_steps": 2, "learning_rate": 1e-2, "gradient_checkpointing": False, **overrides}

    return make


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    with _pg_schema(_pg_admin(request)) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'registry.db'}"


class LiveApi:
    """``tooltune api`` in its own process (uvicorn on 127.0.0.1); ``restart()`` stops and starts it."""

    def __init__(self, db_url: str, work_dir: Path, log: Path):
        self.db_url, self.work_dir, self.log = db_url, work_dir, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        argv = [sys.executable, "-m", "tooltune.cli", "api", "--port", str(self.port), "--token", TOKEN,
                "--registry", self.db_url, "--work-dir", str(self.work_dir)]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **WORKER_ENV})
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tooltune api exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/v1/stats", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"tooltune api did not answer within {START_S} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)


@pytest.fixture
def live_api(tmp_path):
    """Factory: ``live_api(db_url)`` → a started LiveApi; stopped (and its workers killed) at the end."""
    started: list[LiveApi] = []

    def make(db_url: str) -> LiveApi:
        api = LiveApi(db_url, tmp_path / "work", tmp_path / f"api-{len(started)}.log")
        started.append(api)
        api.start()
        return api

    yield make
    for api in started:
        api.stop()
    for api in started:
        kill_workers(api.db_url)


def kill_workers(db_url: str) -> None:
    """Workers outlive the API by design; end the ones still running this test's jobs."""
    from tooltune.api.jobs import worker_alive
    from tooltune.registry import Registry

    with Registry(db_url) as registry:
        for job in registry.jobs.active():
            if job.worker_pid and worker_alive(job.worker_pid, job.id):
                os.kill(job.worker_pid, signal.SIGKILL)


def wait_for(predicate, timeout: float, interval: float = 0.25, what: str = "condition"):
    """Poll ``predicate()`` until it returns something truthy; that value is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    # In-process evaluations share the test machine's few cores: one thread avoids contention.
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
