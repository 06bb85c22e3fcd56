"""The dashboard in headless Debian Chromium, driven by Playwright, against a live ``tooltune api``:
start a job and watch its progress bar move, cancel it, open a comparison and see its charts
drawn, deploy the candidate through the confirmations and see its status change; open a
comparison recorded as the pipeline records it (against the base model) and see the base's own
scores; see a deployed version marked stale when its live tools change."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.api.conftest import AUTH, TOKEN
from tooltune.registry import Registry
from tests.api.test_app import record_pipeline_comparison, register_models

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / ".tooltune" / "artifacts"
# Pixels of a canvas that are not fully transparent: > 0 means Chart.js drew something.
DRAWN_PIXELS = """(id) => { const c = document.getElementById(id); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }"""

# Real processes import torch, transformers and FastAPI cold: give a busy CI machine room.
pytestmark = pytest.mark.timeout(900)



def renamed(catalog, tool: str, old: str, new: str):
    from tooltune.tools.catalog import ToolCatalog

    tools = []
    for t in catalog.tools:
        if t.name == tool:
            props = {(new if k == old else k): v for k, v in t.properties.items()}
            t = t.model_copy(update={"parameters": {**t.parameters, "properties": props,
                                                     "required": [new if r == old else r for r in t.required]}})
        tools.append(t)
    return ToolCatalog(tools=tools)


@pytest.fixture
def browser_page():
    if not CHROMIUM.is_file() and shutil.which("chromium") is None:
        pytest.skip("dashboard browser test skipped: Debian's chromium is not installed (/usr/bin/chromium); "
                    ".ci/run installs it (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM if CHROMIUM.is_file() else shutil.which("chromium")),
                                    headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        yield page, errors
        browser.close()


def test_dashboard_jobs_comparison_and_deploy(browser_page, sqlite_url, live_api, tiny_model, data_dir, job_config, capsys):
    page, errors = browser_page
    register_models(sqlite_url, tiny_model, data_dir)
    api = live_api(sqlite_url)
    with api.client() as client:
        for model in ("assistant@1.0.0", "assistant@1.0.1"):  # the second compares with the first, deployed
            response = client.post("/v1/evaluations", headers=AUTH, json={
                "model": model, "dataset": "fixture", "split": "test_phrasing", "max_new_tokens": 24}, timeout=600)
            assert response.status_code == 200, response.text
            if model.endswith("1.0.0"):
                assert client.post("/v1/models/assistant/1.0.0/deploy", headers=AUTH, json={"force": True}).status_code == 200
        comparison = response.json()["comparison"]
        decision = response.json()["decision"]

    page.goto(api.url + "/")
    page.fill("#token", TOKEN)
    page.dispatch_event("#token", "change")
    page.click("#new-job summary")
    page.fill("#job-config", json.dumps(job_config(100_000)))
    page.click("#job-start")
    bar = page.locator("#jobs tbody tr").first.locator(".bar")
    page.wait_for_function("() => Number(document.querySelector('#jobs tbody tr .bar')?.dataset.progress) > 0", timeout=240_000)
    first = float(bar.get_attribute("data-progress"))
    page.wait_for_function(f"() => Number(document.querySelector('#jobs tbody tr .bar').dataset.progress) > {first}",
                           timeout=60_000)
    assert float(bar.get_attribute("data-progress")) > first  # the bar moved, by server-sent events
    page.click("#jobs tbody tr button[data-cancel]")
    page.click("#confirm-ok")
    page.wait_for_selector("#jobs tbody tr .badge.cancelled", timeout=30_000)

    page.goto(f"{api.url}/#/comparisons/{comparison['id']}")
    page.wait_for_selector("#cmp-outcome-badge")
    for canvas in ("chart-categories", "chart-wlt", "chart-latency"):
        assert page.evaluate(DRAWN_PIXELS, canvas) > 1000, canvas
    assert page.locator("#checks tbody tr").count() == len(decision["checks"])
    assert page.locator("#failing tbody tr pre.raw").count() > 0  # the candidate's raw outputs
    assert page.text_content("#cmp-outcome-badge") == decision["outcome"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-comparison.png"), full_page=True)

    page.click("#cmp-deploy")
    page.click("#confirm-ok")
    if decision["outcome"] == "blocked":  # the gates refuse; the second confirmation forces it
        page.wait_for_selector("#confirm[open] #confirm-body table")
        page.click("#confirm-ok")
    page.wait_for_selector("#flash:has-text('deployed')")
    # A comparison as the pipeline records it: against the base model, whose own scores are drawn.
    piped = record_pipeline_comparison(sqlite_url, comparison["id"])
    page.goto(f"{api.url}/#/comparisons/{piped.id}")
    # Only the hash changes, so the previous comparison stays on screen until the new one is drawn.
    page.wait_for_selector(f"#cmp-title:has-text('Comparison #{piped.id}:')")
    assert page.text_content("#cmp-title") == f"Comparison #{piped.id}: assistant@1.0.1 vs tiny-base (base model)"
    labels, base_bars, cand_bars = page.evaluate(
        "() => { const c = Chart.getChart('chart-categories'); return [c.data.labels, ...c.data.datasets.map((d) => d.data)]; }")
    with Registry(sqlite_url) as registry:
        candidate = registry.evaluations("assistant", "1.0.1")[0].per_category
    expected_base = piped.base_metrics["per_category"]
    assert base_bars == [pytest.approx(100 * expected_base[c]) for c in labels]
    assert cand_bars == [pytest.approx(100 * candidate[c]) for c in labels]
    differ = [c for c in labels if expected_base[c] != candidate[c]]
    assert differ, (expected_base, candidate)  # the two fixture models answer differently
    for c in differ:
        i = labels.index(c)
        assert base_bars[i] != cand_bars[i], c
    assert page.locator("#failing tbody tr pre.raw").count() > 0  # from the evaluation folders it names
    page.screenshot(path=str(ARTIFACTS / "dashboard-pipeline-comparison.png"), full_page=True)

    # The live tools change under the deployed version: the overview says it is stale, why, and how to migrate.
    with Registry(sqlite_url) as registry:
        trained = registry.catalog(registry.get_model("assistant", "1.0.1").catalog_hash)
        registry.check_drift("assistant", "1.0.1", renamed(trained, "create_payment", "amount", "amount_cents"))
    page.goto(api.url + "/")
    row = page.locator('#models tr[data-model="assistant@1.0.1"]')
    row.locator("[data-status]:has-text('deployed')").wait_for()
    assert "every service" in row.inner_text()
    stale = row.locator('.drift[data-drift="shop"]')
    assert "stale: shop" in stale.inner_text() and "create_payment.amount renamed to 'amount_cents'" in stale.inner_text()
    assert "tooltune data migrate" in stale.locator("code.migrate").inner_text()
    assert page.locator('#models tr[data-model="assistant@1.0.0"] td').nth(3).inner_text() == "–"
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    with capsys.disabled():
        print(f"\ndashboard screenshots: {ARTIFACTS / 'dashboard.png'} {ARTIFACTS / 'dashboard-comparison.png'}")
    assert errors == []
