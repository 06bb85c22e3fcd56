"""The production loop end to end, on real processes over loopback and a tiny random model:

serve a deployed adapter from the registry (production logs on, drift watch on the live shop
server) → requests, some of whose calls the live shop server rejects → the client posts each
call's MCP result and one correction → the shop ships a breaking change (a renamed parameter)
→ the server marks the version stale and answers the shop's requests with the base, saying so
→ `tooltune pipeline run` on the logs → the failures are in the new dataset's review queue, the
correction is a training example, and a new major version is registered against the new tools.

The model is the packaged 1.25M-parameter base under tooltune's hermes template (the serving
tests' `hermes_base`), which writes well-formed calls of the wrong shop values; two LoRA steps
teach it nothing. What is checked is the machinery. Calls are forced with a named tool_choice,
as a client that needs one asks for it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx
import pytest
import yaml
from typer.testing import CliRunner

from tests.serve.conftest import free_port, make_hermes_base, start_server, stop_server
from tooltune.registry import Registry

TOOLTUNE = str(Path(sys.executable).parent / "tooltune")
# Real processes (the shop server twice, tooltune serve) and two pipeline runs: about a minute
# and a half on an idle 2-core machine; the bound leaves room for a busy CI runner.
pytestmark = pytest.mark.timeout(600)


class Shop:
    """The shop demo MCP server over streamable HTTP, restartable on the same port and state."""

    def __init__(self, state: Path, log: Path):
        self.state, self.log, self.port = state, log, free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.process: subprocess.Popen | None = None

    def start(self, *extra: str) -> None:
        self.process = subprocess.Popen([TOOLTUNE, "demo-server", "--service", "shop", "--http", str(self.port),
                                         "--data-dir", str(self.state), *extra],
                                        stdout=self.log.open("a"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"demo-server exited:\n{self.log.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("demo-server did not come up")

    def stop(self) -> None:
        if self.process is not None:
            stop_server(self.process)


def pipeline_run(config: Path) -> str:
    """`tooltune pipeline run` as a user runs it: its own process."""
    done = subprocess.run([TOOLTUNE, "pipeline", "run", "--config", str(config)], capture_output=True, text=True,
                          timeout=400, env={**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"})
    assert done.returncode == 0, f"tooltune pipeline run failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def run_tooltune(*args: str) -> str:
    from tooltune.cli import app

    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "240"})
    assert result.exit_code == 0, f"tooltune {' '.join(args)} failed:\n{result.output}\n{result.exception!r}"
    return result.output


def chat(url: str, tool: str, query: str, tools: list[dict]) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", headers={"X-Tooltune-Service": "shop"}, timeout=120, json={
        "model": "shop-assistant", "messages": [{"role": "user", "content": query}], "tools": tools, "max_tokens": 128,
        "tool_choice": {"type": "function", "function": {"name": tool}}})


def run_calls(shop_url: str, calls: list[dict]) -> list:
    """What the client does with the answer: run each call on the live shop server."""
    from tooltune.runtime.agent import execute_call
    from tooltune.serve.chat import connect

    async def main():
        async with connect(mcp_http=shop_url) as client:
            return [await execute_call(client, c["function"]["name"], json.loads(c["function"]["arguments"]))
                    for c in calls]

    return anyio.run(main)


def production_log(directory: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(directory.glob("*.jsonl")) for line in f.read_text().splitlines()]


def test_served_failures_and_a_correction_come_back_as_training_data_after_a_breaking_change(tmp_path):
    base = make_hermes_base(tmp_path / "tiny-base")
    logs, registry_url = tmp_path / "serve-logs", f"sqlite:///{tmp_path / 'registry.db'}"
    (logs / "requests").mkdir(parents=True)
    (logs / "corrections").mkdir()
    shop = Shop(tmp_path / "shop-state", tmp_path / "shop.log")
    shop.start("--reset")
    try:
        _loop(tmp_path, base, logs, registry_url, shop)
    finally:
        shop.stop()  # whatever failed: no process outlives the test


def _loop(tmp_path: Path, base: Path, logs: Path, registry_url: str, shop: Shop) -> None:
    config = tmp_path / "pipeline.yaml"
    config.write_text(yaml.safe_dump({
        "name": "shop-assistant", "work_dir": "work", "registry_url": registry_url, "deploy": False,
        "services": [{"mcp_http": shop.url}],
        "data": {"synthetic": 80, "seed": 0, "semantic_dedup": False, "held_out_tools": ["get_payment_status"],
                 "max_near_dup_contamination": None, "synth": {"execute_multistep": False},
                 "logs": [str(logs / "requests")], "corrections": [str(logs / "corrections")]},
        "train": {"base_model": str(base), "method": "lora", "max_steps": 2, "batch_size": 2, "grad_accum": 1,
                  "eval_steps": 2, "save_steps": 2, "learning_rate": 1e-3, "gradient_checkpointing": False},
        "eval": {"limit": 2, "batch_size": 4, "max_new_tokens": 8, "agent": False},
    }))
    server = None
    try:
        # 1. The first version, trained on the shop's tools as they are, deployed by hand (a random
        #    model cannot pass the gates).
        pipeline_run(config)
        run_tooltune("models", "deploy", "shop-assistant@1.0.0", "--force", "--db", registry_url)
        with Registry(registry_url) as registry:
            first = registry.get_model("shop-assistant", "1.0.0")
            trained_tools = registry.catalog(first.catalog_hash)
        tools = [trained_tools.get(n).to_openai() for n in ("get_customer_by_email", "get_orders")]

        # 2. Serve it: production logs on, the live shop watched every 3 seconds.
        server, url = start_server(["--model", str(base), "--registry", registry_url, "--log-dir", str(logs),
                                    "--watch", f"mcp-http:{shop.url}", "--drift-interval", "0.05",
                                    "--max-new-tokens", "128"], tmp_path / "serve.log")
        answers = [chat(url, "get_customer_by_email", "Who is john.smith@example.com?", tools),
                   chat(url, "get_customer_by_email", "Find the customer maria.garcia@example.com", tools),
                   chat(url, "get_orders", "Show me the orders that have shipped", tools)]
        assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
        assert {a.json()["model"] for a in answers} == {"shop-assistant@1.0.0"}
        assert not any("X-Tooltune-Warning" in a.headers for a in answers)

        # 3. The client runs the calls on the live server and reports each result; the random
        #    email the model wrote is refused by the shop, so those turns are failures.
        outcomes = {}
        for answer in answers:
            calls = answer.json()["choices"][0]["message"]["tool_calls"]
            executed = run_calls(shop.url, calls)
            outcomes[answer.json()["id"]] = any(e.is_error for e in executed)
            feedback = httpx.post(f"{url}/v1/feedback", timeout=30, json={
                "response_id": answer.json()["id"], "outcome": "failure" if outcomes[answer.json()["id"]] else "success",
                "tool_results": [{"name": e.name, "is_error": e.is_error, "result": e.result} for e in executed]})
            assert feedback.status_code == 200, feedback.text
        failed = [i for i, bad in outcomes.items() if bad]
        assert len(failed) >= 2, outcomes  # both email lookups at least
        # ... and a reviewer says what the orders request should have been.
        orders_id = answers[2].json()["id"]
        correction = httpx.post(f"{url}/v1/feedback", timeout=30, json={
            "response_id": orders_id, "outcome": "failure", "comment": "the user asked for shipped orders",
            "corrected_call": {"name": "get_orders", "arguments": {"fulfillment_state": "shipped"}}})
        assert correction.status_code == 200 and correction.json()["correction"] is True
        bad = httpx.post(f"{url}/v1/feedback", timeout=30, json={"response_id": "chatcmpl-unknown", "outcome": "failure"})
        assert bad.status_code == 404 and bad.json()["error"]["param"] == "response_id"

        # 4. The shop ships its next version: get_customer_by_email's `email` is now `address`.
        shop.stop()
        shop.start("--rename-param", "get_customer_by_email.email=address")
        deadline = time.monotonic() + 120
        while not httpx.get(f"{url}/health", timeout=10).json()["drift"]["stale"]:
            assert time.monotonic() < deadline, httpx.get(f"{url}/health").json()
            time.sleep(0.5)
        after = chat(url, "get_orders", "Show me the orders that have shipped", tools)
        assert after.status_code == 200 and after.json()["model"] == "base"  # no earlier version fits the new tools
        warning = after.headers["X-Tooltune-Warning"]
        assert "shop-assistant@1.0.0 is stale for service shop" in warning
        assert "get_customer_by_email.email renamed to 'address'" in warning
        listed = run_tooltune("models", "list", "--db", registry_url)
        assert "stale (shop)" in listed and "tooltune data migrate" in listed
    finally:
        if server is not None:
            stop_server(server)  # the server writes what it has queued before it exits

    lines = production_log(logs / "requests")
    assert {line["id"] for line in lines} >= {a.json()["id"] for a in answers}
    assert any(line.get("requested_model") == "shop-assistant" and line["model"] == "base" for line in lines)

    # 5. The weekly run: the new tools are discovered, the logs and the correction go into the
    #    data, and the new version is registered against the new catalog.
    pipeline_run(config)
    with Registry(registry_url) as registry:
        latest = registry.get_model("shop-assistant")
        [stale] = registry.get_model("shop-assistant", "1.0.0").drift
        comparison = registry.comparisons("shop-assistant", latest.version)[0]
        data_dir = Path(registry.get_dataset(latest.dataset_version).path)
    assert latest.version == "2.0.0"  # a breaking catalog change: a new major version
    assert latest.catalog_hash != first.catalog_hash and latest.catalog_hash == stale.live_catalog_hash
    assert comparison.base == str(base) and not comparison.base_in_registry and comparison.base_metrics

    report = json.loads((data_dir / "report.json").read_text())
    assert report["sources"].get("correction") == 1
    quarantine = [json.loads(line) for line in (data_dir / "quarantine.jsonl").read_text().splitlines()]
    review = {q["record"].get("id"): q for q in quarantine if isinstance(q.get("record"), dict)}
    for response_id in failed:
        assert any("rejected by the tool" in reason for reason in review[response_id]["reason"]), review[response_id]
    # The corrected turn is not asked to be corrected again: its correction is its training example.
    assert orders_id not in review and report["dropped"]["log_lines_corrected"] == 1
    examples = [json.loads(line) for split in ("train", "val", "holdout", "test_phrasing", "test_zero_shot")
                if (data_dir / f"{split}.jsonl").exists() for line in (data_dir / f"{split}.jsonl").read_text().splitlines()]
    [fixed] = [e for e in examples if e["provenance"]["source"] == "correction"]
    assert fixed["meta"]["log_id"] == orders_id
    assert fixed["calls"][0] == {**fixed["calls"][0], "name": "get_orders", "arguments": {"fulfillment_state": "shipped"}}
