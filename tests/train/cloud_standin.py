"""A local STAND-IN for an OpenAI-compatible fine-tuning API: a test double, not a provider.

Nothing is trained. The stand-in implements the endpoints the official ``openai`` SDK calls for a
fine-tuning job, checks the uploaded training file the way a provider does, and walks each job
through the provider's states so that :mod:`tooltune.train.cloud` can be exercised end to end on
127.0.0.1 without network access or an account::

    POST /v1/files                              upload (multipart: file, purpose)
    GET  /v1/files/{id}
    POST /v1/fine_tuning/jobs                   create (model, training_file, validation_file,
                                                hyperparameters or method.supervised.hyperparameters, suffix)
    GET  /v1/fine_tuning/jobs/{id}              status; each call advances the job one stage (below)
    GET  /v1/fine_tuning/jobs/{id}/events       newest first, cursor pagination (after, limit), like the API
    POST /v1/fine_tuning/jobs/{id}/cancel

A job starts in ``validating_files``. Each status request moves it on: the files are validated
(``failed`` with ``error.code = "invalid_training_file"`` when a line is wrong), then ``queued``,
then ``running`` for ``steps`` requests (one ``metrics`` event with a made-up training loss per
step), then ``succeeded`` with ``fine_tuned_model = "ft:<model>:standin[:<suffix>]:<job>"``.
Progress is driven by polls rather than by a clock, so tests are deterministic and take no time.

Each line is checked with :func:`tooltune.data.io.openai.line_problem` (OpenAI's chat
fine-tuning format; the check :mod:`tooltune.train.cloud` runs before it uploads), and a
training file needs at least ``min_examples`` lines (OpenAI: 10). Real providers check more
(token limits, moderation).

Run one from the repository root for a dry run of the ``cloud`` backend::

    python -m tests.train.cloud_standin --port 8765
    OPENAI_API_KEY=standin tooltune train --config train.yaml --set backend=cloud \\
        --set cloud.base_url=http://127.0.0.1:8765/v1 --set cloud.poll_interval=0.2
"""

from __future__ import annotations

import argparse
import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tooltune.data.io.openai import line_problems

TERMINAL = ("succeeded", "failed", "cancelled")
MAX_REPORTED_LINES = 5


@dataclass
class _File:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "object": "file", "bytes": len(self.data), "created_at": self.created_at,
                "filename": self.filename, "purpose": self.purpose, "status": "processed", "status_details": None}


@dataclass
class _Job:
    id: str
    model: str
    training_file: str
    validation_file: str | None
    hyperparameters: dict[str, Any]
    suffix: str | None
    seed: int
    created_at: int
    status: str = "validating_files"
    step: int = 0
    error: dict[str, Any] | None = None
    fine_tuned_model: str | None = None
    finished_at: int | None = None
    trained_tokens: int | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id, "object": "fine_tuning.job", "model": self.model, "created_at": self.created_at,
            "status": self.status, "training_file": self.training_file, "validation_file": self.validation_file,
            "hyperparameters": self.hyperparameters, "suffix": self.suffix, "seed": self.seed,
            "error": self.error, "fine_tuned_model": self.fine_tuned_model, "finished_at": self.finished_at,
            "trained_tokens": self.trained_tokens, "result_files": [], "organization_id": "org-standin",
            "method": {"type": "supervised", "supervised": {"hyperparameters": self.hyperparameters}},
            "integrations": None, "metadata": None, "estimated_finish": None,
        }


class _ApiError(Exception):
    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def body(self) -> dict[str, Any]:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}


class CloudStandIn:
    """A STAND-IN fine-tuning API served from a thread on 127.0.0.1 (see the module docstring).

    Use as a context manager; ``url`` is the ``base_url`` to give the client (``.../v1``).
    ``api_key`` set: only that bearer key is accepted; otherwise any non-empty key is.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, steps: int = 3, min_examples: int = 10,
                 api_key: str | None = None):
        self.steps, self.min_examples, self.api_key = steps, min_examples, api_key
        self.files: dict[str, _File] = {}
        self.jobs: dict[str, _Job] = {}
        self.requests: list[tuple[str, str]] = []
        """(method, path) of every request, in order: what the client called."""
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> CloudStandIn:
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="cloud-standin",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> CloudStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ endpoints

    def handle(self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes) -> tuple[int, Any]:
        with self._lock:
            self.requests.append((method, path))
            self._authenticate(headers)
            parts = [p for p in path.split("/") if p]
            if parts[:1] != ["v1"]:
                raise _ApiError(404, f"Unknown path {path}; the API lives under /v1.")
            route = parts[1:]
            if route == ["files"] and method == "POST":
                return 200, self._upload(headers.get("Content-Type", ""), body)
            if len(route) == 2 and route[0] == "files" and method == "GET":
                return 200, self._file(route[1]).public()
            if route == ["fine_tuning", "jobs"] and method == "POST":
                return 200, self._create(_json_body(body))
            if len(route) == 3 and route[:2] == ["fine_tuning", "jobs"] and method == "GET":
                return 200, self._advance(self._job(route[2])).public()
            if len(route) == 4 and route[:2] == ["fine_tuning", "jobs"] and route[3] == "events" and method == "GET":
                return 200, self._events(self._job(route[2]), query)
            if len(route) == 4 and route[:2] == ["fine_tuning", "jobs"] and route[3] == "cancel" and method == "POST":
                return 200, self._cancel(self._job(route[2])).public()
            raise _ApiError(404, f"Unknown endpoint {method} {path}.")

    def _authenticate(self, headers: Any) -> None:
        auth = headers.get("Authorization", "")
        key = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        if not key or (self.api_key is not None and key != self.api_key):
            raise _ApiError(401, "Incorrect API key provided.", code="invalid_api_key")

    def _upload(self, content_type: str, body: bytes) -> dict[str, Any]:
        fields = _multipart(content_type, body)
        if "file" not in fields:
            raise _ApiError(400, "Missing the 'file' part of the upload.", param="file")
        purpose = fields.get("purpose", (None, b""))[1].decode()
        if purpose != "fine-tune":
            raise _ApiError(400, f"purpose {purpose!r} is not supported by the stand-in; use 'fine-tune'.",
                            param="purpose")
        filename, data = fields["file"]
        if not (filename or "").endswith(".jsonl"):
            raise _ApiError(400, "Invalid file format for Fine-Tuning API. Must be .jsonl", param="file")
        file = _File(f"file-{uuid.uuid4().hex[:24]}", filename or "upload.jsonl", purpose, data, int(time.time()))
        self.files[file.id] = file
        return file.public()

    def _file(self, file_id: str) -> _File:
        if file_id not in self.files:
            raise _ApiError(404, f"No such File object: {file_id}", param="id")
        return self.files[file_id]

    def _job(self, job_id: str) -> _Job:
        if job_id not in self.jobs:
            raise _ApiError(404, f"Fine-tuning job {job_id} not found.", param="fine_tuning_job_id")
        return self.jobs[job_id]

    def _create(self, body: dict[str, Any]) -> dict[str, Any]:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise _ApiError(400, "Missing required parameter: 'model'.", param="model")
        for key in ("training_file", "validation_file"):
            if body.get(key) is not None and body[key] not in self.files:
                raise _ApiError(400, f"invalid {key}: no such file {body[key]!r}.", param=key)
        if not body.get("training_file"):
            raise _ApiError(400, "Missing required parameter: 'training_file'.", param="training_file")
        method = body.get("method") or {}
        supervised = (method.get("supervised") or {}).get("hyperparameters") or {}
        hyper = {**(body.get("hyperparameters") or {}), **supervised}  # legacy top-level field, or method
        resolved = {"n_epochs": 3, "batch_size": 1, "learning_rate_multiplier": 1.8}
        resolved.update({k: v for k, v in hyper.items() if v != "auto"})
        job = _Job(f"ftjob-{uuid.uuid4().hex[:24]}", model, body["training_file"], body.get("validation_file"),
                   resolved, body.get("suffix"), int(body.get("seed") or 42), int(time.time()))
        self.jobs[job.id] = job
        self._event(job, f"Validating training file: {job.training_file}")
        return job.public()

    def _advance(self, job: _Job) -> _Job:
        """One poll moves the job one stage: validate → queued → running × steps → succeeded."""
        if job.status == "validating_files":
            problems = self._validate(job.training_file, "training_file")
            if job.validation_file and not problems:
                problems = self._validate(job.validation_file, "validation_file")
            if problems:
                param, text = problems
                job.status, job.finished_at = "failed", int(time.time())
                job.error = {"code": "invalid_training_file", "param": param, "message": text}
                self._event(job, text, level="error")
            else:
                job.status = "queued"
                self._event(job, "Files validated, moving job to queued state")
        elif job.status == "queued":
            job.status = "running"
            self._event(job, "Fine-tuning job started")
        elif job.status == "running" and job.step < self.steps:
            job.step += 1
            loss = round(2.0 / job.step, 4)
            self._event(job, f"Step {job.step}/{self.steps}: training loss={loss}", kind="metrics",
                        data={"step": job.step, "total_steps": self.steps, "train_loss": loss})
        elif job.status == "running":
            job.status, job.finished_at = "succeeded", int(time.time())
            job.fine_tuned_model = ":".join(["ft", job.model, "standin", *([job.suffix] if job.suffix else []),
                                             job.id.removeprefix("ftjob-")[:8]])
            job.trained_tokens = len(self.files[job.training_file].data) // 4 * int(job.hyperparameters["n_epochs"])
            self._event(job, f"New fine-tuned model created: {job.fine_tuned_model}")
            self._event(job, "The job has successfully completed")
        return job

    def _cancel(self, job: _Job) -> _Job:
        if job.status in TERMINAL:
            raise _ApiError(400, f"Job {job.id} has already {job.status}; only a job that has not ended can be "
                                 "cancelled.", param="fine_tuning_job_id")
        job.status, job.finished_at = "cancelled", int(time.time())
        self._event(job, "Fine-tuning job cancelled")
        return job

    def _events(self, job: _Job, query: dict[str, str]) -> dict[str, Any]:
        newest_first = list(reversed(job.events))
        if "after" in query:  # the cursor names the last (oldest) event of the previous page
            ids = [e["id"] for e in newest_first]
            newest_first = newest_first[ids.index(query["after"]) + 1:] if query["after"] in ids else []
        limit = int(query.get("limit", 20))
        page = newest_first[:limit]
        return {"object": "list", "data": page, "has_more": len(newest_first) > limit}

    def _event(self, job: _Job, message: str, *, level: str = "info", kind: str = "message",
               data: dict[str, Any] | None = None) -> None:
        job.events.append({"id": f"ftevent-{next(self._counter):06d}", "object": "fine_tuning.job.event",
                           "created_at": int(time.time()), "level": level, "message": message, "type": kind,
                           "data": data or {}})

    def _validate(self, file_id: str, param: str) -> tuple[str, str] | None:
        """None when the file is a valid chat fine-tuning file, else (param, provider-style message)."""
        lines = self.files[file_id].data.decode("utf-8", "replace").splitlines()
        count = sum(1 for line in lines if line.strip())
        errors = [f"line {n}: {problem}" for n, problem in line_problems(lines)]
        if errors:
            shown = "; ".join(errors[:MAX_REPORTED_LINES]) + ("; ..." if len(errors) > MAX_REPORTED_LINES else "")
            return param, (f"The job failed due to an invalid training file. {file_id} has {len(errors)} line(s) with "
                           f"format errors: {shown}")
        if param == "training_file" and count < self.min_examples:
            return param, (f"The job failed due to an invalid training file. Training file has {count} example(s), "
                           f"but must have at least {self.min_examples} examples")
        return None


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except json.JSONDecodeError as e:
        raise _ApiError(400, f"Request body is not valid JSON ({e.msg}).") from e
    if not isinstance(value, dict):
        raise _ApiError(400, "Request body must be a JSON object.")
    return value


def _multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    if not content_type.startswith("multipart/form-data"):
        raise _ApiError(400, f"expected a multipart/form-data upload, got {content_type or 'no Content-Type'}")
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return fields


def _handler_for(standin: CloudStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

        def _serve(self, method: str) -> None:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                status, payload = standin.handle(method, url.path, query, self.headers, body)
            except _ApiError as e:
                status, payload = e.status, e.body()
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests and dry runs read the job events
            pass

    return Handler


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.train.cloud_standin``: serve the stand-in until interrupted."""
    parser = argparse.ArgumentParser(description="Local STAND-IN for an OpenAI-compatible fine-tuning API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--steps", type=int, default=3, help="status polls a job spends running")
    parser.add_argument("--min-examples", type=int, default=10)
    args = parser.parse_args(argv)
    standin = CloudStandIn(host=args.host, port=args.port, steps=args.steps, min_examples=args.min_examples)
    print(f"fine-tuning API STAND-IN (nothing is trained) at {standin.url}", flush=True)
    try:
        standin._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        standin._server.server_close()


if __name__ == "__main__":
    main()
