"""The cloud backend against the local STAND-IN fine-tuning API (tests/train/cloud_standin.py):
a job runs from upload to a fine-tuned model id, can be cancelled and re-attached to, and every
failure (bad training file, unreachable provider, missing key) says where and why; a line the
provider would reject is reported before anything is uploaded."""

from __future__ import annotations

import json
import shutil
import socket

import pytest

from tests.train.cloud_standin import CloudStandIn
from tests.train.conftest import TRAIN_DATA
from tooltune.data.io.openai import check_file, line_problem
from tooltune.errors import CloudError, DataError, TrainError
from tooltune.train import TrainConfig, run_training
from tooltune.train.cloud import FineTuningAPI, cancel_cloud_job, train_cloud

@pytest.fixture
def standin():
    with CloudStandIn(api_key="sk-test") as server:
        yield server


@pytest.fixture
def api_key(monkeypatch):
    monkeypatch.setenv("TOOLTUNE_TEST_KEY", "sk-test")


def data_dir(tmp_path, copies: int = 2):
    """The fixture split with train.jsonl repeated: the provider wants at least 10 examples."""
    out = tmp_path / "data"
    out.mkdir()
    (out / "train.jsonl").write_text((TRAIN_DATA / "train.jsonl").read_text() * copies)
    shutil.copy(TRAIN_DATA / "val.jsonl", out / "val.jsonl")
    shutil.copy(TRAIN_DATA / "catalog.json", out / "catalog.json")
    return out


def cloud_config(tmp_path, base_url: str, copies: int = 2, **cloud) -> TrainConfig:
    settings = {"base_url": base_url, "api_key_env": "TOOLTUNE_TEST_KEY", "model": "gpt-4o-mini", "poll_interval": 0,
                **cloud}
    return TrainConfig(backend="cloud", data_dir=data_dir(tmp_path, copies), output_dir=tmp_path / "run",
                       cloud=settings)


def manifest(run_dir):
    return json.loads((run_dir / "manifest.json").read_text())


def test_a_job_runs_from_upload_to_a_fine_tuned_model(tmp_path, standin, api_key):
    config = cloud_config(tmp_path, standin.url, suffix="shop", hyperparameters={"n_epochs": 2})
    seen = []
    result = train_cloud(config, on_event=seen.append)

    assert result.status == "succeeded" and result.model_id.startswith("ft:gpt-4o-mini:standin:shop:")
    run = result.run_dir
    m = manifest(run)
    assert m["backend"] == "cloud" and m["provider"] == {"base_url": standin.url, "model": "gpt-4o-mini"}
    assert m["job"]["id"] == result.job_id and m["result"]["model_id"] == result.model_id
    assert [h["status"] for h in m["status_history"]] == ["validating_files", "queued", "running", "succeeded"]
    assert m["job"]["hyperparameters"]["n_epochs"] == 2  # sent; the rest resolved by the provider
    # The executed 3-step sequence goes up as call → result → call turns, like every other example.
    assert m["data"]["train"]["examples"] == 16 and m["data"]["train"]["uploaded"] == 16
    assert not m["data"]["train"]["skipped"]
    assert set(m["files"]) == {"train", "val"} and "sk-test" not in json.dumps(m)
    assert json.loads((run / "cloud_model.json").read_text())["model"] == result.model_id

    # Every event reached the callback and events.jsonl, oldest first, each once.
    logged = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    assert [e["id"] for e in logged] == [e["id"] for e in seen] == sorted(e["id"] for e in seen)
    messages = [e["message"] for e in seen]
    assert messages[0].startswith("Validating training file") and "Step 3/3: training loss=0.6667" in messages
    assert messages[-1] == "The job has successfully completed"

    # The uploaded bytes are the provider's chat + tools format: tool-call arguments as JSON strings.
    lines = [json.loads(line) for line in (run / "upload" / "train.jsonl").read_text().splitlines()]
    call = next(m for line in lines for m in line["messages"] if m.get("tool_calls"))["tool_calls"][0]
    assert isinstance(call["function"]["arguments"], str) and all(line["tools"] for line in lines)
    assert all(line_problem(json.dumps(line)) is None for line in lines)
    assert ("POST", "/v1/files") in standin.requests and ("POST", "/v1/fine_tuning/jobs") in standin.requests


def test_cancel_a_running_job_and_the_run_says_so(tmp_path, standin, api_key):
    config = cloud_config(tmp_path, standin.url, wait=False)
    submitted = run_training(config, progress=False)  # dispatches on backend: cloud
    assert submitted.status == "validating_files" and submitted.model_id is None
    assert submitted.summary() == {"backend": "cloud", "run_dir": str(config.output_dir), "base_url": standin.url,
                                   "job_id": submitted.job_id, "status": "validating_files", "model_id": None,
                                   "manifest_path": str(config.output_dir / "manifest.json")}

    cancelled = cancel_cloud_job(submitted.run_dir)
    assert cancelled.status == "cancelled" and cancelled.job_id == submitted.job_id
    assert [h["status"] for h in manifest(submitted.run_dir)["status_history"]] == ["validating_files", "cancelled"]
    with pytest.raises(CloudError, match=rf"^{standin.url}: cannot cancel job {submitted.job_id}: HTTP 400: .*already "
                                         "cancelled"):
        cancel_cloud_job(submitted.run_dir)

    # Re-attaching to a cancelled job ends the run with an error, not a model.
    with pytest.raises(CloudError, match=rf"fine-tuning job {submitted.job_id} cancelled"):
        train_cloud(config.model_copy(update={"resume": True, "cloud": config.cloud.model_copy(update={"wait": True})}),
                    progress=False)
    with pytest.raises(TrainError, match="already holds a run"):
        train_cloud(config, progress=False)


def test_cancel_while_waiting(tmp_path, standin, api_key):
    config = cloud_config(tmp_path, standin.url)
    api = FineTuningAPI(standin.url, "sk-test", max_retries=0)

    def cancel_on_first_step(event):
        if event["message"].startswith("Step 1/"):
            api.cancel(manifest(config.output_dir)["job"]["id"])

    with pytest.raises(CloudError, match="cancelled"):
        train_cloud(config, on_event=cancel_on_first_step, api=api)
    m = manifest(config.output_dir)
    assert m["status_history"][-1]["status"] == "cancelled" and m["result"]["model_id"] is None


def test_invalid_training_file_fails_the_job_with_the_providers_reason(tmp_path, standin, api_key):
    config = cloud_config(tmp_path, standin.url, copies=1)  # 8 uploadable examples; the provider wants 10
    with pytest.raises(CloudError) as info:
        train_cloud(config, progress=False)
    assert str(info.value).startswith(f"{standin.url}: fine-tuning job ftjob-")
    assert "failed: invalid_training_file: The job failed due to an invalid training file. Training file has 8 " \
           "example(s), but must have at least 10 examples" in str(info.value)
    assert [h["status"] for h in manifest(config.output_dir)["status_history"]] == ["validating_files", "failed"]

    # A malformed line is reported with its line number and field path.
    good = (config.output_dir / "upload" / "train.jsonl").read_text().splitlines()
    bad = json.loads(good[0])
    call = bad["messages"][-1]["tool_calls"][0]
    call["function"]["arguments"] = json.loads(call["function"]["arguments"])  # an object, not a JSON string
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([*good[1:], json.dumps(bad), *good[1:4]]) + "\n")
    api = FineTuningAPI(standin.url, "sk-test")
    job = api.create_job(model="gpt-4o-mini", training_file=api.upload(path)["id"])
    job = api.job(job["id"])
    assert job["status"] == "failed" and job["error"]["code"] == "invalid_training_file"
    assert "1 line(s) with format errors: line 8: messages[1].tool_calls[0].function.arguments: must be a string " \
           "holding JSON, got an object" in job["error"]["message"]


@pytest.mark.parametrize(("line", "problem"), [
    ('{"messages": [{"role": "user", "content": "hi"}]}', "no assistant message to train on"),
    ('{"messages": [{"role": "robot", "content": "hi"}]}', "messages[0].role: expected one of"),
    ('{"messages": [{"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", '
     '"function": {"name": "f", "arguments": "{}"}}]}], "tools": [{"type": "function", "function": {"name": "g"}}]}',
     "messages[0].tool_calls[0].function.name: 'f' is not in this line's tools"),
    ('{"messages": [{"role": "assistant", "content": "x"}, {"role": "tool", "tool_call_id": "c", "content": "1"}]}',
     "messages[1].tool_call_id: 'c' answers no earlier tool call"),
    ("not json", "not valid JSON"),
])
def test_standin_checks_lines_like_a_provider(line, problem):
    assert problem in line_problem(line)


def test_a_line_the_provider_would_reject_stops_the_run_before_any_upload(tmp_path, standin, api_key):
    """An earlier tool result without its call id (data imported from a format that has none)
    exports as a line OpenAI rejects: it is named with its file, line and example, and the
    provider never hears of the run."""
    config = cloud_config(tmp_path, standin.url)
    lines = (config.data_dir / "train.jsonl").read_text().splitlines()
    example = json.loads(lines[2])
    example["messages"] = [{"role": "user", "content": "Weather in Oslo?"},
                           {"role": "assistant", "content": None, "tool_calls": [
                               {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]},
                           {"role": "tool", "content": "sunny"}, *example["messages"]]
    del example["id"]  # recomputed from the new content
    lines[2] = json.dumps(example)
    (config.data_dir / "train.jsonl").write_text("\n".join(lines) + "\n")

    with pytest.raises(DataError) as info:
        train_cloud(config, progress=False)
    upload = config.output_dir / "upload" / "train.jsonl"
    message = str(info.value)
    assert message.startswith(f"{upload}:3: messages[2].tool_call_id: None answers no earlier tool call (example ")
    assert f" of {config.data_dir / 'train.jsonl'})" in message and "1 line(s) of" in message
    assert standin.requests == [] and not standin.files and not (config.output_dir / "manifest.json").exists()


def test_check_file_names_every_bad_line(tmp_path):
    path = tmp_path / "train.jsonl"
    good = '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}'
    path.write_text("\n".join([good, "not json", "", *['{"messages": []}'] * 6]) + "\n")
    with pytest.raises(DataError) as info:
        check_file(path)
    shown = str(info.value).splitlines()
    assert shown[0] == f"{path}:2: not valid JSON (Expecting value)"
    assert shown[1] == f'{path}:4: expected an object with a non-empty "messages" list'
    assert shown[5] == "... and 2 more" and shown[6].startswith(f"7 line(s) of {path} would be rejected")
    path.write_text(good + "\n\n")
    check_file(path)  # a good file passes, blank lines included


def test_unreachable_provider_and_missing_key_name_the_base_url(tmp_path, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    url = f"http://127.0.0.1:{port}/v1"
    monkeypatch.setenv("TOOLTUNE_TEST_KEY", "sk-test")
    config = cloud_config(tmp_path, url, max_retries=0)
    with pytest.raises(CloudError, match=rf"^{url}: cannot upload train\.jsonl: could not connect "
                                                          r"\(.*\)\. Check cloud\.base_url"):
        train_cloud(config, progress=False)

    monkeypatch.delenv("TOOLTUNE_TEST_KEY")
    with pytest.raises(CloudError, match=rf"TOOLTUNE_TEST_KEY is not set, so there is no API key for {url}"):
        train_cloud(config.model_copy(update={"output_dir": tmp_path / "other"}), progress=False)


def test_a_refused_key_is_reported(tmp_path, standin, monkeypatch):
    monkeypatch.setenv("TOOLTUNE_TEST_KEY", "sk-wrong")
    with pytest.raises(CloudError, match=rf"^{standin.url}: .*the API key was refused \(HTTP 401"):
        train_cloud(cloud_config(tmp_path, standin.url, max_retries=0), progress=False)
