"""Training jobs through a real ``tooltune api`` process (uvicorn on 127.0.0.1) and real worker
processes training the tiny Llama: completion with SSE progress, cancel mid-run, an API restart
mid-job, and a worker that dies."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from tests.api.conftest import AUTH, wait_for
from tooltune.api.jobs import worker_alive

TRAINING_STARTS_S = 240  # a cold worker imports torch, transformers and TRL: slow on a busy machine

# Real processes import torch, transformers and FastAPI cold: give a busy CI machine room.
pytestmark = pytest.mark.timeout(900)



def sse_events(client, job_id: int) -> list[tuple[str, dict]]:
    """Every event of the job's stream until it ends."""
    events, name = [], None
    with client.stream("GET", f"/v1/jobs/{job_id}/events", timeout=300) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line.split(":", 1)[1])))
                if name == "end":
                    break
    return events


def running(client, job_id: int, min_step: int = 1):
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] in ("pending", "running"), job
    return job if job["status"] == "running" and job["step"] >= min_step else None


def test_job_completes_with_progress_events_and_registers_the_model(db_url, live_api, job_config):
    api = live_api(db_url)
    with api.client() as client:
        created = client.post("/v1/jobs", params={"register": "tiny-tuned"}, json=job_config(8), headers=AUTH)
        assert created.status_code == 201, created.text
        job = created.json()
        assert job["status"] in ("pending", "running") and job["worker_pid"]
        events = sse_events(client, job["id"])
        final = client.get(f"/v1/jobs/{job['id']}").json()
        models = client.get("/v1/models").json()

    assert events[-1] == ("end", {"status": "completed"})
    steps = [data["step"] for name, data in events if name == "progress"]
    assert steps == sorted(steps) and steps[-1] == 8 and len(set(steps)) >= 2  # progress seen while training
    assert final["status"] == "completed" and final["progress"] == 1.0
    assert (final["step"], final["total_steps"]) == (8, 8)
    assert [entry["step"] for entry in final["losses"] if "loss" in entry] == [1, 2, 4, 6, 8]
    assert all(entry["loss"] > 0 for entry in final["losses"] if "loss" in entry)
    run_dir = Path(final["run_dir"])
    assert (run_dir / "adapter_model.safetensors").is_file() and (run_dir / "manifest.json").is_file()
    assert [(m["name"], m["version"], m["job_id"], m["artifact_path"]) for m in models] == \
        [("tiny-tuned", "1.0.0", job["id"], str(run_dir))]
    wait_for(lambda: not worker_alive(job["worker_pid"], job["id"]), 30, what="the worker to exit")


def test_cancel_mid_run_stops_the_worker_within_seconds(sqlite_url, live_api, job_config):
    api = live_api(sqlite_url)
    with api.client() as client:
        job = client.post("/v1/jobs", json=job_config(100_000), headers=AUTH).json()
        wait_for(lambda: running(client, job["id"], min_step=2), TRAINING_STARTS_S, what="training to start")
        asked = time.monotonic()
        cancel = client.post(f"/v1/jobs/{job['id']}/cancel", headers=AUTH)
        assert cancel.status_code == 200 and cancel.json()["cancel_requested"] is True
        done = wait_for(lambda: (j := client.get(f"/v1/jobs/{job['id']}").json())["status"] != "running" and j, 10,
                        what="the job to end")
        took = time.monotonic() - asked
        wait_for(lambda: not psutil.pid_exists(job["worker_pid"]) or not worker_alive(job["worker_pid"], job["id"]), 10,
                 what="the worker process to exit")
        again = client.post(f"/v1/jobs/{job['id']}/cancel", headers=AUTH)

    assert done["status"] == "cancelled" and done["error"] is None, done
    assert took < 10
    assert 2 <= done["step"] < 100_000
    assert not (Path(done["run_dir"]) / "adapter_model.safetensors").exists()  # stopped, nothing saved
    assert again.status_code == 409 and "cancelled" in again.json()["detail"]


def test_restart_mid_job_keeps_its_state_and_a_dead_worker_fails_the_job(sqlite_url, live_api, job_config):
    api = live_api(sqlite_url)
    with api.client() as client:
        job = client.post("/v1/jobs", json=job_config(40), headers=AUTH).json()
        before = wait_for(lambda: running(client, job["id"], min_step=2), TRAINING_STARTS_S, what="training to start")
    api.stop()
    assert worker_alive(job["worker_pid"], job["id"])  # the job outlives the API
    api.start()
    with api.client() as client:
        after = client.get(f"/v1/jobs/{job['id']}").json()
        assert after["status"] in ("running", "completed")
        assert after["worker_pid"] == job["worker_pid"] and after["step"] >= before["step"]
        assert after["config"] == before["config"]
        finished = wait_for(lambda: (j := client.get(f"/v1/jobs/{job['id']}").json())["status"] == "completed" and j,
                            TRAINING_STARTS_S, what="the job to complete after the restart")
        assert finished["step"] == 40

        doomed = client.post("/v1/jobs", json=job_config(100_000), headers=AUTH).json()
        wait_for(lambda: running(client, doomed["id"]), TRAINING_STARTS_S, what="the second job to start")
    # The worker dies while no API is running; the next API finds out from the registry and the pid.
    api.stop()
    os.kill(doomed["worker_pid"], signal.SIGKILL)
    wait_for(lambda: not worker_alive(doomed["worker_pid"], doomed["id"]), 10, what="the worker to die")
    api.start()
    with api.client() as client:
        failed = wait_for(lambda: (j := client.get(f"/v1/jobs/{doomed['id']}").json())["status"] != "running" and j, 10,
                          what="the dead worker's job to fail")
    assert failed["status"] == "failed"
    assert f"worker process {doomed['worker_pid']} is gone" in failed["error"]
    assert failed["log"] in failed["error"]
