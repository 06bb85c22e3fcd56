"""Load test of `tooltune serve` on loopback: N concurrent clients, bounded in requests and time.

Starts a real `tooltune serve` process on 127.0.0.1 (any free port), waits for /health, then
runs ``--clients`` threads, each sending chat completions with the shop's tools (discovered from
the real shop MCP server) until ``--requests`` have been sent in total or ``--seconds`` have
passed. Each request asks for a named function (``tool_choice``), so every answer is a
grammar-constrained call whose arguments are checked against the tool's schema; a non-200, a
missing call or a schema-invalid call counts as an error. Prints requests/s, p50/p95 latency,
errors and the machine (CPU model, cores, threads, precision) as JSON.

    python benchmarks/serve_load.py --model tests/fixtures/tiny_base/model --hermes --clients 4 --requests 40
    python benchmarks/serve_load.py --model pypi:smollm2-135m-instruct --clients 4 --requests 40 --baseline

The server runs with prefix caching and request batching (``--prefix-cache-mb``, ``--max-batch``,
``--batch-window-ms``). ``--baseline`` first runs the same load against a server with both off
(``--prefix-cache-mb 0 --max-batch 1``: one generation at a time, every prompt prefilled whole,
as before issue #18) and checks that both servers gave the same answer to each query.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import jsonschema

TOOLTUNE = str(Path(sys.executable).parent / "tooltune")
QUERIES = ["Show me the orders that are awaiting shipment", "Which payments are still processing?",
           "List the delivered orders", "Find the customer named John Smith"]
CALLS = ["get_orders", "list_payments", "get_orders", "get_customer_by_name"]


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    rank = (len(values) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return values[low] + (values[high] - values[low]) * (rank - low)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _hermes_copy(model: str, directory: Path) -> str:
    """The model with its own chat template removed: tooltune's hermes template, which has a grammar."""
    from tooltune.runtime.names import resolve_model_name

    target = directory / "model"
    shutil.copytree(resolve_model_name(model), target)
    (target / "chat_template.jinja").unlink(missing_ok=True)
    config_file = target / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    config.pop("chat_template", None)
    config_file.write_text(json.dumps(config))
    return str(target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="pypi:smollm2-135m-instruct")
    parser.add_argument("--hermes", action="store_true",
                        help="Serve the model under tooltune's built-in hermes template (needed for named tool_choice "
                             "on models whose own template writes another format, e.g. the tests' tiny base).")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=40, help="Total requests (upper bound).")
    parser.add_argument("--seconds", type=float, default=120, help="Wall-time bound of the load phase.")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="OMP threads of the server process.")
    parser.add_argument("--dtype", default="auto", help="auto (bf16 only where this CPU runs it faster), fp32 or bf16.")
    parser.add_argument("--prefix-cache-mb", type=int, default=None, help="Server's prefix cache (default: its own).")
    parser.add_argument("--max-batch", type=int, default=None, help="Server's request batch size (default: its own).")
    parser.add_argument("--batch-window-ms", type=float, default=None, help="Server's batching window (default: its own).")
    parser.add_argument("--baseline", action="store_true",
                        help="First run the load against a server without prefix caching and batching; compare answers.")
    parser.add_argument("--tools", default="", help="Comma-separated shop tools to offer (default: all eight); the "
                                                  "queries' named functions must be among them.")
    args = parser.parse_args()
    if args.clients < 1 or args.requests < 1 or args.seconds <= 0:
        parser.error("--clients, --requests and --seconds must be positive")

    import torch

    from tooltune.tools.discover import discover
    from tooltune.runtime.names import resolve_model_name
    from tooltune.runtime.machine import describe_machine, machine_line
    from tooltune.runtime.precision import precision_for

    work = Path(tempfile.mkdtemp(prefix="tooltune-serve-load-"))
    tools = list(discover(mcp_stdio=f"{TOOLTUNE} demo-server --service shop --data-dir {work / 'shop'} --reset"))
    if args.tools:
        tools = [t for t in tools if t.name in args.tools.split(",")]
    schemas = {t.name: t.parameters for t in tools}
    model = _hermes_copy(args.model, work) if args.hermes else args.model
    # Resolved here for this model on the server's thread count and passed on, so the figure names
    # the precision the server ran.
    torch.set_num_threads(args.threads)
    args.dtype = precision_for(args.dtype, resolve_model_name(model), "cpu")
    print(machine_line(args.dtype), file=sys.stderr, flush=True)
    server_options = {"--prefix-cache-mb": args.prefix_cache_mb, "--max-batch": args.max_batch,
                      "--batch-window-ms": args.batch_window_ms}
    runs = {}
    try:
        if args.baseline:
            runs["baseline (prefix cache off, one at a time)"] = _serve_and_load(
                model, {"--prefix-cache-mb": 0, "--max-batch": 1}, work, tools, schemas, args)
        runs["prefix cache and batching"] = _serve_and_load(model, server_options, work, tools, schemas, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result: dict = {"machine": {**describe_machine().model_dump(exclude={"torch_threads"}), "server_threads": args.threads,
                                "precision": args.dtype}, "model": args.model, "hermes_template": args.hermes,
                    "tools": len(tools), "clients": args.clients, "max_tokens": args.max_tokens}
    for label, run in runs.items():
        result[label] = {k: v for k, v in run.items() if k != "answers"}
    if args.baseline:
        base, new = (run["answers"] for run in runs.values())
        result["same_answers"] = all(base.get(k) == v for k, v in new.items()) and len(new) > 0
    print(json.dumps(result, indent=2))


def _serve_and_load(model: str, options: dict, work: Path, tools: list, schemas: dict, args: argparse.Namespace) -> dict:
    """Start `tooltune serve` with ``options``, run the load, stop it."""
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "TOKENIZERS_PARALLELISM": "false"}
    extra = [str(x) for flag, value in options.items() if value is not None for x in (flag, value)]
    log = (work / "serve.log").open("w")
    server = subprocess.Popen([TOOLTUNE, "serve", "--model", model, "--host", "127.0.0.1", "--port", str(port),
                               "--device", "cpu", "--dtype", args.dtype, "--max-new-tokens", str(args.max_tokens), *extra],
                              stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        while True:
            if server.poll() is not None or time.monotonic() - started > 300:
                raise SystemExit(f"server did not start:\n{(work / 'serve.log').read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        result = _load(url, [t.to_openai() for t in tools], schemas, args)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:  # uvicorn waits for generations still in flight
            server.kill()
            server.wait()
    result["server_options"] = " ".join(extra) or "defaults"
    return result


def _load(url: str, tools: list[dict], schemas: dict, args: argparse.Namespace) -> dict:
    lock = threading.Lock()
    issued = 0
    latencies: list[float] = []
    errors: list[str] = []
    answers: dict[str, str] = {}
    deadline = time.monotonic() + args.seconds
    calls = [c for c in CALLS if c in schemas] or list(schemas)

    def client(worker: int) -> None:
        nonlocal issued
        with httpx.Client(base_url=url, timeout=args.seconds + 60) as http:
            while time.monotonic() < deadline:
                with lock:
                    if issued >= args.requests:
                        return
                    k = issued
                    issued += 1
                body = {"model": "base", "messages": [{"role": "user", "content": QUERIES[k % len(QUERIES)]}],
                        "tools": tools, "max_tokens": args.max_tokens,
                        "tool_choice": {"type": "function", "function": {"name": calls[k % len(calls)]}}}
                t0 = time.perf_counter()
                try:
                    response = http.post("/v1/chat/completions", json=body)
                    elapsed = time.perf_counter() - t0
                    problem = _check(response, schemas)
                except httpx.HTTPError as e:
                    elapsed, problem = time.perf_counter() - t0, f"{type(e).__name__}: {e}"
                with lock:
                    latencies.append(elapsed)
                    if problem:
                        errors.append(problem)
                    else:  # greedy decoding: one answer per query, whatever the load
                        key = f"{QUERIES[k % len(QUERIES)]} -> {calls[k % len(calls)]}"
                        answer = json.dumps([c["function"] for c in response.json()["choices"][0]["message"]["tool_calls"]])
                        if answers.setdefault(key, answer) != answer:
                            errors.append(f"{key}: two different answers under load")

    t_start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t_start
    return {"requests": len(latencies), "wall_s": round(wall, 2), "requests_per_s": round(len(latencies) / wall, 2),
            "latency_ms_p50": round(_percentile(latencies, 50) * 1000, 1) if latencies else None,
            "latency_ms_p95": round(_percentile(latencies, 95) * 1000, 1) if latencies else None,
            "errors": len(errors), "error_examples": errors[:3], "answers": answers}


def _check(response: httpx.Response, schemas: dict) -> str | None:
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    message = response.json()["choices"][0]["message"]
    calls = message.get("tool_calls") or []
    if not calls:
        return f"no tool call (content {str(message.get('content'))[:80]!r})"
    for call in calls:
        try:
            jsonschema.validate(json.loads(call["function"]["arguments"]), schemas[call["function"]["name"]])
        except (jsonschema.ValidationError, json.JSONDecodeError, KeyError) as e:
            return f"invalid call {call['function']['name']}: {str(e)[:120]}"
    return None


if __name__ == "__main__":
    main()
