"""The ``cloud`` training backend: a provider's hosted fine-tuning job, over the OpenAI-compatible API.

:class:`FineTuningAPI` is the one interface to a provider: upload a file, create a job with
hyperparameters, read its status and new events, cancel it. It is written against the official
``openai`` SDK with a configurable ``base_url``, so any provider that implements OpenAI's
fine-tuning endpoints works. Every failure becomes a :class:`~tooltune.errors.CloudError` whose
message starts with the ``base_url``.

:func:`train_cloud` runs a whole job from a :class:`~tooltune.train.config.TrainConfig`:

1. export ``train.jsonl``/``val.jsonl`` to the provider's chat + tools JSONL with
   :func:`tooltune.data.io.openai.write` (tool-call arguments as JSON strings), and check every
   line of both files as the provider will (:func:`tooltune.data.io.openai.check_file`): a bad
   line is a :class:`~tooltune.errors.DataError` naming the file, line, problem and example
   before any request is made, not a job that fails after it was queued;
2. upload them, create the job (``cloud.hyperparameters``, ``cloud.suffix``);
3. poll every ``cloud.poll_interval`` seconds, handing each new event to ``on_event`` (a rich
   console line by default) until the job succeeds, fails or is cancelled;
4. keep the run directory current after every change, so a killed process loses nothing:

    manifest.json     backend, provider URL, job id, files, status history, result model id, data, config
    events.jsonl      the provider's job events, oldest first
    upload/train.jsonl, upload/val.jsonl   exactly the bytes that were uploaded
    cloud_model.json  on success: {"kind": "cloud", "base_url", "model", "base_model"} for eval and serving

``resume: true`` re-attaches to the job recorded in the manifest instead of starting another;
:func:`cancel_cloud_job` cancels it. The tests run it against a local stand-in of those
endpoints (``tests/train/cloud_standin.py``).
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from tooltune.data.io import openai as openai_jsonl
from tooltune.errors import CloudError, TrainError
from tooltune.tools.catalog import ToolCatalog
from tooltune.train import manifest as mf
from tooltune.train.config import CloudSettings, TrainConfig
from tooltune.train.dataset import read_split

TERMINAL = ("succeeded", "failed", "cancelled")
EVENTS_NAME = "events.jsonl"
UPLOAD_DIR = "upload"
CLOUD_MODEL_NAME = "cloud_model.json"

Event = dict[str, Any]


class CloudResult(BaseModel):
    """What :func:`train_cloud` produced (or where the job stands, with ``wait: false``)."""

    run_dir: Path = Field(description="Directory with manifest.json, events.jsonl and the uploaded files.")
    base_url: str = Field(description="The provider API the job runs on.")
    job_id: str = Field(description="The provider's fine-tuning job id.")
    status: str = Field(description="Last known job status: validating_files, queued, running, succeeded, ….")
    model_id: str | None = Field(None, description="The fine-tuned model's id at the provider, once succeeded.")
    manifest_path: Path = Field(description="The run's manifest.json.")

    def summary(self) -> dict[str, Any]:
        """JSON-ready facts for the CLI and the pipeline."""
        return {"backend": "cloud", **self.model_dump(mode="json")}


class FineTuningAPI:
    """A provider's fine-tuning jobs through the OpenAI-compatible API (official ``openai`` SDK).

    Methods return plain dicts (the API's JSON); errors are :class:`CloudError` naming ``base_url``.
    """

    def __init__(self, base_url: str, api_key: str, *, max_retries: int = 2, timeout: float = 60.0,
                 client: Any = None):
        self.base_url = base_url.rstrip("/")
        if client is None:
            try:
                import openai
            except ImportError as e:  # pragma: no cover - a tooltune dependency
                raise CloudError("the cloud backend needs the openai package (a tooltune dependency): pip install openai") from e
            client = openai.OpenAI(base_url=self.base_url, api_key=api_key, max_retries=max_retries, timeout=timeout)
        self.client = client

    @classmethod
    def from_settings(cls, settings: CloudSettings) -> FineTuningAPI:
        """Build from ``cloud`` settings; the key comes from the environment variable they name."""
        key = os.environ.get(settings.api_key_env)
        if not key:
            raise CloudError(
                f"cloud.api_key_env: the environment variable {settings.api_key_env} is not set, so there is no API "
                f"key for {settings.base_url}. Export it (any non-empty value works with the local stand-in)."
            )
        return cls(settings.base_url, key, max_retries=settings.max_retries)

    def upload(self, path: Path) -> dict[str, Any]:
        """Upload a JSONL file for fine-tuning; the provider's file object."""
        with Path(path).open("rb") as f:
            return self._call(f"upload {Path(path).name}", self.client.files.create, file=(Path(path).name, f),
                              purpose="fine-tune")

    def create_job(self, *, model: str, training_file: str, validation_file: str | None = None,
                   hyperparameters: dict[str, Any] | None = None, suffix: str | None = None,
                   seed: int | None = None) -> dict[str, Any]:
        """Create a supervised fine-tuning job. ``hyperparameters`` left out (or "auto") are the provider's."""
        kwargs: dict[str, Any] = {"model": model, "training_file": training_file}
        if validation_file:
            kwargs["validation_file"] = validation_file
        chosen = {k: v for k, v in (hyperparameters or {}).items() if v != "auto"}
        if chosen:
            kwargs["method"] = {"type": "supervised", "supervised": {"hyperparameters": chosen}}
        if suffix:
            kwargs["suffix"] = suffix
        if seed is not None:
            kwargs["seed"] = seed
        return self._call("create the fine-tuning job", self.client.fine_tuning.jobs.create, **kwargs)

    def job(self, job_id: str) -> dict[str, Any]:
        return self._call(f"read job {job_id}", self.client.fine_tuning.jobs.retrieve, job_id)

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._call(f"cancel job {job_id}", self.client.fine_tuning.jobs.cancel, job_id)

    def new_events(self, job_id: str, seen: set[str]) -> list[Event]:
        """Events not in ``seen`` (ids), oldest first. The API lists newest first and pages
        towards older ones, so paging stops at the first event already seen."""
        def fetch() -> list[Event]:
            fresh = []
            for event in self.client.fine_tuning.jobs.list_events(job_id, limit=100):  # auto-paginates
                if event.id in seen:
                    break
                fresh.append(event.model_dump(mode="json"))
            return fresh

        fresh = self._call(f"read the events of job {job_id}", fetch)
        return list(reversed(fresh))

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        import openai

        try:
            result = fn(*args, **kwargs)
        except openai.APIConnectionError as e:
            cause = e.__cause__ or e
            raise CloudError(
                f"{self.base_url}: cannot {what}: could not connect ({type(cause).__name__}: {cause}). Check "
                "cloud.base_url and the network."
            ) from e
        except openai.AuthenticationError as e:
            raise CloudError(f"{self.base_url}: cannot {what}: the API key was refused (HTTP 401: "
                             f"{_message(e)}). Check the key in cloud.api_key_env.") from e
        except openai.NotFoundError as e:
            raise CloudError(f"{self.base_url}: cannot {what}: HTTP 404: {_message(e)}. Does this provider "
                             "implement the OpenAI fine-tuning API under this base_url?") from e
        except openai.APIStatusError as e:
            raise CloudError(f"{self.base_url}: cannot {what}: HTTP {e.status_code}: {_message(e)}") from e
        return result.model_dump(mode="json") if hasattr(result, "model_dump") else result


def train_cloud(config: TrainConfig, *, progress: bool = True, on_event: Callable[[Event], None] | None = None,
                api: FineTuningAPI | None = None) -> CloudResult:
    """Run (or, with ``resume``, re-attach to) a hosted fine-tuning job and write the run directory.

    ``on_event`` receives every new provider event (a dict: ``created_at``, ``level``,
    ``message``, ``type``, ``data``) in order; by default, with ``progress``, each is printed on
    stderr. Raises :class:`CloudError` when the provider cannot be reached, refuses a request,
    or the job fails or is cancelled; the manifest records the status history either way.
    """
    started = time.perf_counter()
    if config.backend != "cloud":
        raise TrainError(f"backend: train_cloud() runs the cloud backend; got {config.backend!r}.")
    settings = config.cloud
    run_dir = config.output_dir
    previous = _read_manifest(run_dir)
    if previous is not None and not config.resume:
        raise TrainError(f"{run_dir}: already holds a run (manifest.json, job {_job_id(previous)}). Set resume: true "
                         "to re-attach to its job, or choose another output_dir.")
    api = api or FineTuningAPI.from_settings(settings)
    on_event = on_event or (_print_event if progress else None)

    if previous is not None and _job_id(previous):
        manifest = previous
        manifest["config"] = config.model_dump(mode="json")
        run = _Run(run_dir, manifest, started)
        job = api.job(_job_id(manifest))
    else:
        manifest, job = _submit(config, api)
        run = _Run(run_dir, manifest, started)
    run.update(job)  # written at once: the job id survives whatever happens next
    seen = {e["id"] for e in _read_events(run_dir)}
    while settings.wait and job["status"] not in TERMINAL:
        time.sleep(settings.poll_interval)
        for event in api.new_events(job["id"], seen):
            seen.add(event["id"])
            run.event(event)
            if on_event is not None:
                on_event(event)
        job = api.job(job["id"])
        run.update(job)
    for event in api.new_events(job["id"], seen) if job["status"] in TERMINAL else []:
        run.event(event)
        if on_event is not None:
            on_event(event)

    result = CloudResult(run_dir=run_dir, base_url=api.base_url, job_id=job["id"], status=job["status"],
                         model_id=job.get("fine_tuned_model"), manifest_path=run_dir / mf.MANIFEST_NAME)
    if job["status"] == "succeeded":
        (run_dir / CLOUD_MODEL_NAME).write_text(json.dumps({
            "kind": "cloud", "base_url": api.base_url, "model": job.get("fine_tuned_model"),
            "base_model": manifest["provider"]["model"], "api_key_env": settings.api_key_env,
        }, indent=2) + "\n")
    elif job["status"] in ("failed", "cancelled"):
        error = job.get("error") or {}
        detail = f": {error.get('code')}: {error.get('message')}" if error.get("message") else ""
        raise CloudError(f"{api.base_url}: fine-tuning job {job['id']} {job['status']}{detail} "
                         f"(status history in {result.manifest_path}).")
    return result


def cancel_cloud_job(run_dir: str | Path, *, api: FineTuningAPI | None = None) -> CloudResult:
    """Cancel the job recorded in ``run_dir/manifest.json`` and record the new status there."""
    run_dir = Path(run_dir)
    manifest = _read_manifest(run_dir)
    if manifest is None or not _job_id(manifest):
        raise TrainError(f"{run_dir}: no cloud job recorded (no manifest.json with a job id).")
    if api is None:
        settings = CloudSettings.model_validate(manifest["config"]["cloud"])
        api = FineTuningAPI.from_settings(settings.model_copy(update={"base_url": manifest["provider"]["base_url"]}))
    job = api.cancel(_job_id(manifest))
    _Run(run_dir, manifest, None).update(job)
    return CloudResult(run_dir=run_dir, base_url=api.base_url, job_id=job["id"], status=job["status"],
                       model_id=job.get("fine_tuned_model"), manifest_path=run_dir / mf.MANIFEST_NAME)


def _submit(config: TrainConfig, api: FineTuningAPI) -> tuple[dict[str, Any], dict[str, Any]]:
    """Export, upload and create the job: the first manifest and the job as created."""
    settings = config.cloud
    catalog = ToolCatalog.load(config.catalog_path) if config.catalog or config.catalog_path.is_file() else None
    train_path, val_path = config.data_dir / "train.jsonl", config.data_dir / "val.jsonl"
    train, val = read_split(train_path), read_split(val_path, required=False)
    upload_dir = config.output_dir / UPLOAD_DIR
    exports: dict[str, tuple[Path, list[str]]] = {}
    data: dict[str, Any] = {"dir": str(config.data_dir),
                            "hash": mf.dataset_hash([e.id for e in train], [e.id for e in val])}
    for split, examples, source in (("train", train, train_path), ("val", val, val_path)):
        if not examples:
            continue
        path = upload_dir / f"{split}.jsonl"
        exported = openai_jsonl.write(examples, path, catalog)
        skipped = [f"{r.source}: {'; '.join(r.reason)}" for r in exported.skipped]
        data[split] = {"examples": len(examples), "uploaded": exported.written, "skipped": skipped}
        if skipped:
            warnings.warn(f"{source}: {len(skipped)} of {len(examples)} examples cannot be written in the provider's "
                          f"format and are not uploaded (first: {skipped[0]})", UserWarning, stacklevel=3)
        if exported.written == 0:
            if split == "train":
                raise TrainError(f"{source}: none of the {len(examples)} examples can be uploaded; see the reasons "
                                 f"above.")
            continue
        left_out = {r.record.get("id") for r in exported.skipped if isinstance(r.record, dict)}
        exports[split] = (path, [f"example {e.id} of {source}" for e in examples if e.id not in left_out])
    for path, origins in exports.values():  # every file, before the first request
        openai_jsonl.check_file(path, origins=origins)
    files = {split: {"path": str(path), "id": api.upload(path)["id"]} for split, (path, _) in exports.items()}
    model = settings.model or config.base_model
    job = api.create_job(
        model=model, training_file=files["train"]["id"],
        validation_file=files["val"]["id"] if "val" in files else None,
        hyperparameters=settings.hyperparameters.model_dump(), suffix=settings.suffix, seed=config.seed,
    )
    return {
        "backend": "cloud",
        "provider": {"base_url": api.base_url, "model": model},
        "job": {"id": job["id"], "status": job["status"]},
        "files": files,
        "status_history": [],
        "result": {"model_id": None},
        "catalog": {"path": str(config.catalog_path), "hash": catalog.hash} if catalog is not None else None,
        "data": data,
        "config": config.model_dump(mode="json"),
        "git": mf.git_state(),
        "versions": {**mf.library_versions(), "openai": _version("openai")},
    }, job


class _Run:
    """The run directory of one cloud job, kept current as the job moves."""

    def __init__(self, run_dir: Path, manifest: dict[str, Any], started: float | None):
        self.run_dir, self.manifest, self.started = run_dir, manifest, started
        run_dir.mkdir(parents=True, exist_ok=True)

    def update(self, job: dict[str, Any]) -> None:
        history = self.manifest.setdefault("status_history", [])
        changed = not history or history[-1]["status"] != job["status"]
        if changed:
            history.append({"status": job["status"], "at": datetime.now(timezone.utc).isoformat()})
        self.manifest["job"] = {k: job.get(k) for k in (
            "id", "status", "model", "created_at", "finished_at", "hyperparameters", "training_file",
            "validation_file", "trained_tokens", "error")}
        self.manifest["result"] = {"model_id": job.get("fine_tuned_model")}
        if self.started is not None:
            self.manifest["wall_time_s"] = round(time.perf_counter() - self.started, 2)
        if changed or job["status"] in TERMINAL:
            self.write()

    def event(self, event: Event) -> None:
        with (self.run_dir / EVENTS_NAME).open("a") as f:
            f.write(json.dumps(event) + "\n")

    def write(self) -> None:
        body = {k: v for k, v in self.manifest.items() if k not in ("manifest_version", "created_at")}
        mf.write_manifest(self.run_dir, body)


def _read_manifest(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / mf.MANIFEST_NAME
    return json.loads(path.read_text()) if path.is_file() else None


def _read_events(run_dir: Path) -> list[Event]:
    path = run_dir / EVENTS_NAME
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def _job_id(manifest: dict[str, Any]) -> str | None:
    return (manifest.get("job") or {}).get("id")


def _message(error: Any) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(getattr(error, "message", error))


def _print_event(event: Event) -> None:
    from rich.console import Console
    from rich.markup import escape

    when = datetime.fromtimestamp(event.get("created_at") or 0, timezone.utc).strftime("%H:%M:%S")
    style = "red" if event.get("level") == "error" else "yellow" if event.get("level") == "warn" else "dim"
    Console(stderr=True, highlight=False).print(f"[{style}]{when} {event.get('level', 'info'):5}[/] "
                                                f"{escape(str(event.get('message', '')))}", markup=True)


def _version(name: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
