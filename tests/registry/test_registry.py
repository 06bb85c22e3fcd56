"""Datasets, training jobs, model versions, evaluations and comparisons, on SQLite and PostgreSQL."""

import threading

import pytest

from tooltune.errors import ConfigError, RegistryError
from tooltune.registry import JobStatus, ModelStatus, Registry
from tooltune.registry.engine import URL_ENV


def test_datasets_are_registered_once_per_content_hash(registry):
    first = registry.register_dataset(content_hash="h1", catalog_hash="c1", path="data/v1", counts={"train": 80},
                                      version="2026-11-01")
    again = registry.register_dataset(content_hash="h1", catalog_hash="c1", path="elsewhere", version="other-name")
    assert again == first
    assert registry.get_dataset("2026-11-01").counts == {"train": 80}
    with pytest.raises(RegistryError, match="already registered with content hash h1"):
        registry.register_dataset(content_hash="h2", catalog_hash="c1", path="data/v2", version="2026-11-01")
    assert registry.register_dataset(content_hash="h2", catalog_hash="c1", path="data/v2").version == "h2"
    with pytest.raises(RegistryError, match="no dataset version 'nope'.*recent: h2, 2026-11-01"):
        registry.get_dataset("nope")


def test_training_job_lifecycle(registry):
    registry.register_dataset(content_hash="h1", catalog_hash="c1", path="data", version="d1")
    job = registry.jobs.start(config={"lr": 1e-4}, run_dir="runs/a", dataset_version="d1", queued=True)
    assert job.status is JobStatus.PENDING and job.started_at is None and job.dataset_version == "d1"
    job = registry.jobs.update(job.id, status="running", step=10, epoch=0.5, progress=0.25, losses={"loss": 1.5})
    assert job.status is JobStatus.RUNNING and job.started_at is not None
    job = registry.jobs.update(job.id, step=20, epoch=1.0, progress=0.5, losses={"loss": 1.1, "eval_loss": 1.3})
    assert job.losses == [{"step": 10, "epoch": 0.5, "loss": 1.5},
                          {"step": 20, "epoch": 1.0, "loss": 1.1, "eval_loss": 1.3}]
    with pytest.raises(RegistryError, match="progress 1.5 is outside"):
        registry.jobs.update(job.id, progress=1.5)
    done = registry.jobs.finish(job.id)
    assert done.status is JobStatus.COMPLETED and done.progress == 1.0 and done.finished_at is not None
    with pytest.raises(RegistryError, match=f"training job {job.id} is completed; it can move to nothing"):
        registry.jobs.finish(job.id, "failed", error="late")
    failed = registry.jobs.finish(registry.jobs.start(config={}, run_dir="runs/b").id, "failed", error="CUDA OOM")
    assert failed.error == "CUDA OOM"
    assert [j.status for j in registry.jobs.recent()] == [JobStatus.FAILED, JobStatus.COMPLETED]
    assert [j.id for j in registry.jobs.recent(status="completed")] == [job.id]


def test_job_queue_worker_protocol(registry):
    """The job API's side of the queue: claim, progress with the cancel flag, cancel, a dead worker."""
    jobs = registry.jobs
    job = jobs.start(config={"max_steps": 4}, run_dir="runs/w", queued=True)
    assert jobs.set_worker(job.id, 4242).worker_pid == 4242
    assert [j.id for j in jobs.active()] == [job.id]
    claimed = jobs.claim(job.id, 4343)
    assert claimed.status is JobStatus.RUNNING and claimed.worker_pid == 4343 and claimed.started_at is not None
    with pytest.raises(RegistryError, match=f"training job {job.id} cannot be claimed: it is running"):
        jobs.claim(job.id, 4444)
    assert jobs.report_progress(job.id, step=2, total_steps=4, epoch=0.5, losses=[{"step": 2, "epoch": 0.5, "loss": 0.9}]) is False
    assert jobs.get(job.id).progress == 0.5 and jobs.get(job.id).losses == [{"step": 2, "epoch": 0.5, "loss": 0.9}]
    assert jobs.request_cancel(job.id).cancel_requested
    assert jobs.report_progress(job.id, step=3, total_steps=4, epoch=0.75) is True
    assert jobs.finish(job.id, JobStatus.CANCELLED).status is JobStatus.CANCELLED
    assert jobs.fail_if_active(job.id, "worker gone") is None  # finished just before the check: left as it is
    assert jobs.active() == []

    waiting = jobs.start(config={}, run_dir="runs/x", queued=True)
    jobs.request_cancel(waiting.id)
    with pytest.raises(RegistryError, match="cannot be claimed: cancel was requested"):
        jobs.claim(waiting.id, 4545)
    failed = jobs.fail_if_active(waiting.id, "worker process 4545 is gone")
    assert failed.status is JobStatus.FAILED and failed.error == "worker process 4545 is gone"
    with pytest.raises(RegistryError, match="no training job 999 in the registry"):
        jobs.get(999)


def test_versions_follow_the_catalog_change(register, registry):
    assert register("v1").version == "1.0.0"
    assert register("v1", config={"learning_rate": 2e-4}).version == "1.0.1"   # training change only
    assert register("v1b").version == "1.0.2"                                   # description reworded
    assert register("v2").version == "1.1.0"                                    # tool added
    assert register("v3").version == "2.0.0"                                    # parameter removed
    assert [m.version for m in registry.list_models("shop-agent")] == ["2.0.0", "1.1.0", "1.0.2", "1.0.1", "1.0.0"]
    assert registry.get_model("shop-agent").version == "2.0.0"
    assert registry.resolve("shop-agent@1.0.1").config["learning_rate"] == 2e-4
    assert register("v3", name="other-agent").version == "1.0.0"               # versions are per name


def test_registering_the_same_inputs_twice_returns_the_existing_model(register, registry, metrics):
    registry.register_dataset(content_hash="h1", catalog_hash="c1", path="data", version="d1")
    first = register("v1", dataset_version="d1", artifact_hash="a1", evaluation=metrics(0.9))
    again = register("v1", dataset_version="d1", artifact_hash="a1", evaluation=metrics(0.9))
    assert again.id == first.id and again.version == "1.0.0"
    assert len(registry.list_models()) == 1
    assert len(registry.evaluations("shop-agent", "1.0.0")) == 1      # same suite/split: not stored twice
    # any input changing makes a new version
    assert register("v1", dataset_version="d1", artifact_hash="a2").version == "1.0.1"
    assert first.fingerprint != registry.get_model("shop-agent", "1.0.1").fingerprint


def test_registration_with_an_evaluation_is_one_step(register, registry, metrics):
    model = register("v1", evaluation=metrics(0.9))
    assert model.status is ModelStatus.EVALUATED
    [evaluation] = registry.evaluations("shop-agent", "1.0.0")
    assert evaluation.overall == 0.9 and evaluation.per_category["parallel"] == 0.9
    assert evaluation.per_split["test_zero_shot"] == 0.7 and evaluation.examples == 200


def test_bad_evaluation_is_refused_before_anything_is_written(register, registry, metrics):
    with pytest.raises(ConfigError, match="per_category.simple.*fractions"):
        register("v1", evaluation=metrics(0.9, per_category={"simple": 90}))
    assert registry.list_models() == []


def test_status_moves_forward_only(register, registry, metrics):
    register("v1")
    assert registry.get_model("shop-agent").status is ModelStatus.REGISTERED
    with pytest.raises(RegistryError, match=r"shop-agent@1.0.0 is registered; it can move to evaluated, archived, "
                                            r"not deployed\. Record an evaluation first"):
        registry.deploy("shop-agent", "1.0.0", actor="ci")
    registry.record_evaluation("shop-agent", "1.0.0", metrics(0.9))
    assert registry.get_model("shop-agent").status is ModelStatus.EVALUATED
    assert registry.archive("shop-agent", "1.0.0", actor="ci").status is ModelStatus.ARCHIVED
    with pytest.raises(RegistryError, match="is archived; it can move to nothing .archived is final."):
        registry.record_evaluation("shop-agent", "1.0.0", metrics(0.95))
    with pytest.raises(RegistryError, match="is archived.*register a new version"):
        registry.deploy("shop-agent", "1.0.0", actor="ci", force=True)


def test_unknown_models_name_what_exists(register, registry):
    register("v1")
    with pytest.raises(RegistryError, match="shop-agent has no version 9.9.9; registered versions: 1.0.0"):
        registry.get_model("shop-agent", "9.9.9")
    with pytest.raises(RegistryError, match="no model named 'nope'.*registered names: shop-agent"):
        registry.resolve("nope@1.0.0")
    with pytest.raises(RegistryError, match="model name 'a@b' is not allowed"):
        register("v1", name="a@b")
    with pytest.raises(RegistryError, match="kind 'lora' is not one of adapter, full, prompt"):
        register("v1", kind="lora")


def test_comparisons_are_stored_with_both_models(register, registry):
    register("v1")
    register("v2")
    record = registry.record_comparison("shop-agent@1.0.0", "shop-agent@1.1.0",
                                        {"suite_version": "s1", "wins": 12, "losses": 3, "ties": 85,
                                         "deltas": {"overall": 0.04}})
    assert (record.base, record.candidate, record.wins) == ("shop-agent@1.0.0", "shop-agent@1.1.0", 12)
    assert registry.comparisons("shop-agent", "1.1.0") == [record]
    with pytest.raises(ConfigError, match="wins"):
        registry.record_comparison("shop-agent@1.0.0", "shop-agent@1.1.0", {"losses": 1, "ties": 1})


def test_diff_models_reports_config_dataset_catalog_and_metrics(register, registry, metrics):
    registry.register_dataset(content_hash="h1", catalog_hash="c1", path="data", version="d1")
    register("v1", dataset_version="d1", evaluation=metrics(0.90))
    register("v2", config={"learning_rate": 2e-4, "lora": {"r": 32}}, evaluation=metrics(0.93))
    result = registry.diff_models("shop-agent@1.0.0", "shop-agent@1.1.0")
    assert {c.path: (c.a, c.b) for c in result.config} == {"learning_rate": (1e-4, 2e-4), "lora.r": (16, 32)}
    assert {c.path for c in result.fields} >= {"dataset_version", "catalog_hash"}
    assert [c.tool for c in result.catalog.changes] == ["refund"]
    overall = next(m for m in result.metrics if m.metric == "overall")
    assert overall.delta_points == pytest.approx(3.0)
    assert result.suites == ("suite-1/all", "suite-1/all") and result.notes == []


def test_url_comes_from_the_environment_or_defaults_to_sqlite_in_cwd(registry_url, tmp_path, monkeypatch):
    monkeypatch.setenv(URL_ENV, registry_url)
    with Registry() as registry:
        assert registry.engine.url.get_backend_name() == registry_url.split(":")[0].split("+")[0]
    monkeypatch.delenv(URL_ENV)
    monkeypatch.chdir(tmp_path)
    with Registry() as registry:
        assert registry.url == f"sqlite:///{tmp_path}/.tooltune/registry.db"
    assert (tmp_path / ".tooltune" / "registry.db").is_file()


def test_concurrent_registrations_get_distinct_versions(registry_url, catalogs):
    errors = []

    def worker(n: int) -> None:
        with Registry(registry_url, migrate=False) as registry:
            for i in range(2):
                try:
                    registry.register_model("busy", kind="adapter", base_model="b", artifact_path="p",
                                            catalog=catalogs["v1"], config={"worker": n, "run": i})
                except Exception as e:  # pragma: no cover - reported below
                    errors.append(e)

    Registry(registry_url).close()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Registry(registry_url) as registry:
        versions = [m.version for m in registry.list_models("busy")]
    assert len(versions) == 6 and len(set(versions)) == 6


def test_unreachable_database_is_a_registry_error():
    with pytest.raises(RegistryError, match=r"cannot open the registry database postgresql\+psycopg://nobody@127.0.0.1:1/x"):
        Registry("postgresql://nobody@127.0.0.1:1/x")
