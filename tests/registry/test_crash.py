"""A registration killed mid-transaction leaves the registry as it was, on both backends."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select, text

from tooltune.registry import Registry
from tooltune.registry.engine import create_registry_engine
from tooltune.registry.tables import Catalog, Evaluation, Model

WORKER = Path(__file__).with_name("_crash_worker.py")


def _counts(url: str) -> dict[str, int]:
    engine = create_registry_engine(url)
    try:
        with engine.connect() as conn:
            return {t.__tablename__: conn.scalar(select(func.count()).select_from(t)) for t in (Model, Evaluation, Catalog)}
    finally:
        engine.dispose()


def _uncommitted_write_in_progress(url: str) -> bool:
    """The worker really is inside an open write transaction (so the kill tests a rollback)."""
    engine = create_registry_engine(url)
    try:
        if engine.dialect.name == "sqlite":
            return Path(engine.url.database + "-journal").exists()  # rollback journal of the open transaction
        with engine.connect() as conn:
            return conn.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'")) >= 1
    finally:
        engine.dispose()


def test_sigkill_inside_the_registration_transaction_leaves_nothing_half_written(
        registry_url, register, registry, catalogs, metrics, tmp_path):
    register("v1", evaluation=metrics(0.90))
    registry.deploy("shop-agent", "1.0.0", actor="alice")
    before = _counts(registry_url)
    catalog_path = catalogs["v2"].save(tmp_path / "catalog.json")  # a new catalog row would be written too
    marker = tmp_path / "inside-transaction"

    worker = subprocess.Popen([sys.executable, str(WORKER), registry_url, str(marker), str(catalog_path)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            if worker.poll() is not None:
                raise AssertionError(f"worker exited early: {worker.stdout.read().decode()}")
            assert time.monotonic() < deadline, "worker never reached the transaction"
            time.sleep(0.05)
        assert _uncommitted_write_in_progress(registry_url)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.stdout.close()
    assert worker.returncode == -signal.SIGKILL

    # Nothing of the killed registration is visible; what was there before is intact.
    assert _counts(registry_url) == before
    with Registry(registry_url) as fresh:
        assert [m.version for m in fresh.list_models()] == ["1.0.0"]
        assert fresh.deployed("shop-agent").version == "1.0.0"
        # No lock or journal left behind: the same registration now goes through, whole.
        model = fresh.register_model("shop-agent", kind="adapter", base_model="tiny-llama", artifact_path="runs/crash",
                                     catalog=catalogs["v2"], config={"run": "crash"},
                                     evaluation=metrics(0.95))
        assert model.version == "1.1.0" and len(fresh.evaluations("shop-agent", "1.1.0")) == 1
    after = _counts(registry_url)
    assert after == {k: v + 1 for k, v in before.items()}
