"""Test data for publishers: three small services (shop, calendar, weather) with catalogs,
training examples and test scenarios, written the way a service team would lay them out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import yaml

from tooltune.data.examples import Behavior, ExpectedCall, Example, Provenance, Quality, Source, write_jsonl
from tooltune.tools.catalog import Tool, ToolCatalog

from tests.conftest import free_port

FIXTURES = Path(__file__).parents[1] / "fixtures"
TOOLTUNE = str(Path(sys.executable).parent / "tooltune")
SECRET = "test-secret-shared-by-the-service-and-its-token-issuer"
T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def _tool(service: str, name: str, description: str, params: dict[str, str]) -> Tool:
    return Tool(name=name, description=description, service=service,
                parameters={"type": "object", "properties": {p: {"type": "string", "description": d} for p, d in params.items()},
                            "required": list(params)})


CATALOGS = {
    "shop": ToolCatalog.load(FIXTURES / "catalogs" / "shop.json"),
    "calendar": ToolCatalog(tools=[
        _tool("calendar", "book_meeting", "Book a meeting in the user's calendar.", {"title": "Meeting title", "day": "ISO date"}),
        _tool("calendar", "cancel_meeting", "Cancel a booked meeting.", {"meeting_id": "Meeting id, e.g. mtg_12"}),
    ]),
    "weather": ToolCatalog(tools=[
        _tool("weather", "get_forecast", "Weather forecast for a city.", {"city": "City name"}),
        _tool("weather", "get_alerts", "Severe weather alerts for a region.", {"region": "Region name"}),
    ]),
}

# (user request, tool, arguments) per service; the first three of each train, the rest test.
REQUESTS = {
    "shop": [
        ("Find the customer whose email is ann.lee@corp.io", "get_customer_by_email", {"email": "ann.lee@corp.io"}),
        ("What is the status of payment pay_0042?", "get_payment_status", {"payment_id": "pay_0042"}),
        ("Look up the customer named Maria Garcia", "get_customer_by_name", {"name": "Maria Garcia"}),
        ("Show the latest order of customer cus_0007", "get_latest_order", {"customer_id": "cus_0007"}),
        ("Is payment pay_0100 done yet?", "get_payment_status", {"payment_id": "pay_0100"}),
    ],
    "calendar": [
        ("Book a meeting called Standup on 2026-12-01", "book_meeting", {"title": "Standup", "day": "2026-12-01"}),
        ("Cancel meeting mtg_12", "cancel_meeting", {"meeting_id": "mtg_12"}),
        ("Put Retro in my calendar for 2026-12-04", "book_meeting", {"title": "Retro", "day": "2026-12-04"}),
        ("Please cancel mtg_40", "cancel_meeting", {"meeting_id": "mtg_40"}),
    ],
    "weather": [
        ("What's the forecast for Paris?", "get_forecast", {"city": "Paris"}),
        ("Any storm alerts in Bavaria?", "get_alerts", {"region": "Bavaria"}),
        ("Weather in Lisbon tomorrow?", "get_forecast", {"city": "Lisbon"}),
        ("Alerts for Tuscany please", "get_alerts", {"region": "Tuscany"}),
    ],
}


def example(service: str, text: str, tool: str, arguments: dict, *, day: int = 0, source: Source = Source.CURATED,
            critical: bool = False) -> Example:
    return Example(
        service=service, messages=[{"role": "user", "content": text}], tools=CATALOGS[service].names,
        behavior=Behavior.CALLS, calls=[ExpectedCall(name=tool, arguments=arguments)],
        provenance=Provenance(source=source, quality=Quality.HIGH, created_at=T0 + timedelta(days=day)),
        meta={"critical": True} if critical else {},
    )


def write_service(root: Path, service: str, *, corrupt: bool = False, anonymized: bool = False,
                  min_accuracy: float = 0.8) -> Path:
    """``root/service/``: catalog.json, metadata.yaml, train.jsonl and tests.jsonl."""
    folder = root / service
    folder.mkdir(parents=True, exist_ok=True)
    CATALOGS[service].save(folder / "catalog.json")
    (folder / "metadata.yaml").write_text(yaml.safe_dump({
        "version": f"{service}-2026.11", "owner": f"{service}-team@corp.io", "anonymized": anonymized,
        "consent": {"training_allowed": True, "basis": "service-owned curated data"},
        "restrictions": ["internal use only"], "min_accuracy_required": min_accuracy}))
    requests = REQUESTS[service]
    sources = [Source.CURATED, Source.PRODUCTION, Source.SYNTHETIC]
    train = [example(service, *r, day=i, source=sources[i % 3]) for i, r in enumerate(requests[:3])]
    tests = [example(service, *r, day=10 + i, critical=i == 0) for i, r in enumerate(requests[3:])]
    write_jsonl(train, folder / "train.jsonl")
    if corrupt:  # a well-formed example whose call breaks the catalog: the orchestrator must quarantine it
        bad = example(service, "Refund everything", "refund_everything", {"now": "yes"}, day=5)
        with (folder / "train.jsonl").open("a") as f:
            f.write(bad.model_dump_json(exclude_none=True) + "\n")
    write_jsonl(tests, folder / "tests.jsonl")
    return folder


def start_publisher(folder: Path, service: str, port: int, db: Path, *, slow_s: float = 0.0, extra: list[str] = ()) -> subprocess.Popen:
    """A real publisher process on 127.0.0.1:port: `tooltune publish`, or for ``slow_s`` the
    publisher router mounted in a team's own FastAPI app that answers slowly."""
    env = {**os.environ, "TOOLTUNE_PUBLISH_KEY": SECRET}
    if slow_s:
        cmd = [sys.executable, str(Path(__file__).parent / "slow_publisher.py"), service, str(folder), str(port),
               f"sqlite:///{db}", str(slow_s)]
    else:
        cmd = [TOOLTUNE, "publish", "--service", service, "--data", str(folder), "--port", str(port),
               "--db", f"sqlite:///{db}", *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 150.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"publisher on {port} exited {proc.returncode}: {proc.stderr.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/.well-known/mcp-training-data.json", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"publisher on {port} did not answer within {timeout:g} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stderr:
        proc.stderr.close()


def read_json(path: Path):
    return json.loads(path.read_text())
