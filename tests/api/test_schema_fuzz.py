"""schemathesis against the published OpenAPI schema of a live ``tooltune api``: no input, valid
or not, may make the server answer 5xx. Bounded: a few positive and negative cases per operation."""

from __future__ import annotations

import time

import pytest

from tests.api.conftest import AUTH

CASES_PER_MODE = 12  # per operation and generation mode; the whole run stays well under a minute here

# Real processes import torch, transformers and FastAPI cold: give a busy CI machine room.
pytestmark = pytest.mark.timeout(900)



def seed(url: str, data_dir) -> None:
    """Something behind every read route: a finished job, a dataset, two evaluated models, a comparison."""
    from tooltune.registry import JobStatus, Registry
    from tooltune.tools.catalog import ToolCatalog

    catalog = ToolCatalog.load(data_dir / "catalog.json")
    metrics = {"suite_version": "s1", "overall": 0.5, "per_category": {"simple": 0.5}}
    with Registry(url) as registry:
        job = registry.jobs.start(config={"max_steps": 1}, run_dir=data_dir / "run")
        registry.jobs.finish(job.id, JobStatus.COMPLETED)
        registry.register_dataset(content_hash="h1", catalog_hash=catalog.hash, path=data_dir, version="d1")
        for seed_value in (1, 2):
            registry.register_model("m", kind="full", base_model="b", artifact_path=data_dir, catalog=catalog,
                                    config={"seed": seed_value}, evaluation=metrics)
        registry.record_comparison("m@1.0.0", "m@1.0.1", {"suite_version": "s1", "wins": 1, "losses": 1, "ties": 3})
        registry.check_gates("m", "1.0.1")


def test_no_server_errors_on_the_published_schema(sqlite_url, live_api, data_dir, capsys):
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings

    seed(sqlite_url, data_dir)
    api = live_api(sqlite_url)
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    statuses: list[int] = []
    errors: list[str] = []
    started = time.monotonic()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 13
    for operation in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            @settings(max_examples=CASES_PER_MODE, deadline=None, database=None, phases=[Phase.generate],
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case):
                response = case.call(headers=AUTH, timeout=30)
                statuses.append(response.status_code)
                if response.status_code >= 500:
                    errors.append(f"{case.method} {case.formatted_path} → {response.status_code}: {response.text[:300]}")

            run()
    seconds = time.monotonic() - started
    with capsys.disabled():
        print(f"\nschemathesis: {len(statuses)} cases over {len(operations)} operations in {seconds:.1f} s, "
              f"{len(errors)} server errors; statuses {sorted(set(statuses))}")
    assert not errors, "\n".join(errors)
    assert len(statuses) >= 10 * len(operations)
    assert {200, 400, 404} <= set(statuses)
