"""Exports of the tests' 1.25M-parameter tiny base (and a LoRA run on it): each loads through
``load_model`` and gives the source's first tool call on a fixed prompt, greedy."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tooltune.errors import ConfigError
from tooltune.runtime.generate import Generator
from tooltune.runtime.model import load_model
from tooltune.export.exporter import ExportConfig, export_model
from tooltune.export.gguf import pre_tokenizer_by_structure
from tooltune.runtime.exported import GGUF_RUNTIME_ENV, llama_cpp_available, load_runtime_model, read_export_info
from tooltune.tools.call import ToolCall
from tooltune.tools.catalog import Tool

# A tool and a request of the kind the base was pretrained on (its synthetic universe), so its
# greedy answer is a confident call rather than noise a rounding could flip.
TOOLS = [
    Tool.model_validate({"name": "lookup_expense", "description": "Look up a expense by ID and return its details.",
                         "parameters": {"type": "object", "properties": {
                             "expense_id": {"type": "string", "description": "Expense ID, e.g. 'exp_0091'."}},
                             "required": ["expense_id"]}}),
    Tool.model_validate({"name": "delete_note", "description": "Delete a note.",
                         "parameters": {"type": "object", "properties": {
                             "note_id": {"type": "string", "description": "Note ID, e.g. 'nte_0001'."}},
                             "required": ["note_id"]}}),
]
PROMPTS = [[{"role": "user", "content": "Please find the expense exp_8479."}],
           [{"role": "user", "content": "get rid of the note nte_3497 pls"}]]
EXPECTED = [ToolCall("lookup_expense", {"expense_id": "exp_8479"}), ToolCall("delete_note", {"note_id": "nte_3497"})]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # the CPU is shared; a model this small runs fastest on one thread
    yield
    torch.set_num_threads(previous)


def first_calls(loaded) -> list[ToolCall | None]:
    """The first call of the greedy answer to each of PROMPTS, batched (left padding included)."""
    outputs = Generator(loaded, max_new_tokens=40, batch_size=2).generate([(p, TOOLS) for p in PROMPTS])
    calls = [loaded.call_format.parse(o.text).calls for o in outputs]
    return [c[0] if c else None for c in calls]


@pytest.fixture(scope="module")
def source(tiny_base_dir):
    return load_model(tiny_base_dir, device="cpu", dtype="fp32")


@pytest.fixture(scope="module")
def source_calls(source):
    calls = first_calls(source)
    assert calls == EXPECTED  # the premise of every comparison below
    return calls


@pytest.fixture(scope="module")
def exports(tmp_path_factory, tiny_base_dir) -> dict[str, Path]:
    """The tiny test base exported every way, once for the module."""
    root = tmp_path_factory.mktemp("exports")
    made = {}
    for to, quantize in [("merged", None), ("onnx", None), ("onnx", "int8"), ("gguf", None), ("gguf", "int8")]:
        name = to + (f"-{quantize}" if quantize else "")
        made[name] = export_model(ExportConfig(source=str(tiny_base_dir), to=to, quantize=quantize, output_dir=root / name)).output_dir
    return made


@pytest.mark.parametrize("name", ["merged", "onnx", "onnx-int8", "gguf", "gguf-int8"])
def test_each_export_loads_and_gives_the_sources_first_tool_call(exports, source_calls, name, monkeypatch, tiny_base_dir):
    monkeypatch.setenv(GGUF_RUNTIME_ENV, "transformers")  # llama.cpp runs in its own test, in a subprocess
    loaded = load_model(exports[name])
    assert loaded.kind == {"merged": "base"}.get(name, name.split("-")[0])
    assert loaded.call_format.name == "pythonic"  # the base's own template, carried into the export
    assert first_calls(loaded) == source_calls
    info = read_export_info(exports[name])
    assert info.source == str(tiny_base_dir) and info.source_kind == "base" and info.call_format == "pythonic"


def test_onnx_logits_match_pytorch_and_int8_is_smaller(exports, source):
    prompt = source.render(PROMPTS[0], TOOLS)
    ids = source.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        reference = source.model(**ids).logits[0, -1].numpy()
    onnx = load_runtime_model(exports["onnx"], "onnx", read_export_info(exports["onnx"]).details)
    logits = onnx.start(ids["input_ids"].numpy(), ids["attention_mask"].numpy())[0]
    assert abs(logits - reference).max() < 1e-4
    sizes = {name: (exports[name] / "model.onnx").stat().st_size for name in ("onnx", "onnx-int8")}
    assert sizes["onnx-int8"] < sizes["onnx"] / 1.8  # int8 weights, fp32 embeddings and norms


def test_gguf_is_a_llama_file_with_the_tokenizer_and_template_llama_cpp_needs(exports, source):
    from gguf import GGUFReader

    fields = GGUFReader(exports["gguf"] / "model.gguf").fields
    value = {k: fields[k].contents() for k in ("general.architecture", "tokenizer.ggml.model", "tokenizer.ggml.pre",
                                                  "tokenizer.chat_template", "llama.block_count")}
    assert value["general.architecture"] == "llama" and value["llama.block_count"] == 4
    assert value["tokenizer.ggml.model"] == "gpt2"
    assert value["tokenizer.ggml.pre"] == "smollm"  # digits split one by one, then GPT-2's regex
    assert not re.search(r"\{%-?\s*(end)?generation\b", value["tokenizer.chat_template"])  # plain Jinja for llama.cpp
    assert value["tokenizer.chat_template"].startswith("{#- tooltune base template")
    sizes = {name: (exports[name] / "model.gguf").stat().st_size for name in ("gguf", "gguf-int8")}
    assert sizes["gguf-int8"] < sizes["gguf"] / 3  # Q8_0 against f32


LLAMA_CPP_CHECK = """
import json, sys, torch
torch.set_num_threads(1)
from tooltune.runtime.model import load_model
from tests.export.test_export import PROMPTS, TOOLS, first_calls
loaded = load_model(sys.argv[1])
prompt = loaded.render(PROMPTS[0], TOOLS)
ours = loaded.tokenizer(prompt, add_special_tokens=False)["input_ids"]
theirs = loaded.model.context(0).tokenize(prompt.encode(), add_bos=False, special=True)
calls = first_calls(loaded)
loaded.model.close()
print(json.dumps({"runtime": type(loaded.model).__name__, "same_tokens": ours == theirs,
                  "calls": [[c.name, c.arguments] if c else None for c in calls]}))
"""


@pytest.mark.skipif(not llama_cpp_available(), reason="llama-cpp-python is not installed (it builds llama.cpp from "
                    "source for ~10 minutes, so it is not in the export extra); pip install llama-cpp-python to run it")
@pytest.mark.parametrize("name", ["gguf", "gguf-int8"])
def test_llama_cpp_loads_the_gguf_tokenizes_alike_and_gives_the_same_call(exports, source_calls, name):
    # A subprocess: a llama.cpp crash fails this test instead of ending the test session.
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", LLAMA_CPP_CHECK, str(exports[name])], capture_output=True, text=True,
                            timeout=240, cwd=root, env={**os.environ, "PYTHONPATH": str(root), GGUF_RUNTIME_ENV: "llama.cpp"})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["runtime"] == "LlamaCppCausalLM"
    assert report["same_tokens"]  # llama.cpp's own tokenizer (from the GGUF) agrees with the source's
    assert report["calls"] == [[c.name, c.arguments] for c in source_calls]


def test_gguf_loads_with_transformers_when_llama_cpp_is_absent(exports, source_calls):
    model = load_runtime_model(exports["gguf"], "gguf", {}, gguf_runtime="transformers")
    assert type(model).__name__ == "LlamaForCausalLM"  # GGUF weights dequantized into torch


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, source, tiny_base_dir) -> Path:
    """A LoRA run dir as `tooltune train` writes it (adapter + tokenizer) on the tiny test base,
    its B matrices nudged off zero so the merge has something to fold in."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_base_dir)
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.02)
    run = tmp_path_factory.mktemp("lora_run")
    peft_model.save_pretrained(run)
    source.tokenizer.save_pretrained(run)
    return run


def test_merged_export_of_a_lora_run_is_the_merged_model_as_plain_weights(lora_run, tmp_path, source):
    run = load_model(lora_run)
    result = export_model(ExportConfig(source=str(lora_run), to="merged", output_dir=tmp_path / "merged"))
    merged = load_model(result.output_dir)
    assert result.info.source_kind == "adapter" and merged.kind == "base"
    assert not (result.output_dir / "adapter_config.json").exists()
    assert "model.safetensors" in result.info.files
    ids = source.tokenizer(source.render(PROMPTS[0], TOOLS), return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        run_logits, merged_logits, base_logits = (m.model(**ids).logits for m in (run, merged, source))
    assert torch.allclose(run_logits, merged_logits, atol=1e-5)
    assert not torch.allclose(merged_logits, base_logits, atol=1e-3)  # the adapter really was folded in
    assert first_calls(merged) == first_calls(run)


def test_onnx_export_runs_through_tooltune_eval(exports, tmp_path):
    from tooltune.data.examples import Behavior, Example, ExpectedCall, Provenance, Source, write_jsonl
    from tooltune.eval.runner import EvalConfig, run_eval
    from tooltune.tools.catalog import ToolCatalog

    data = tmp_path / "data"
    ToolCatalog(tools=TOOLS).save(data / "catalog.json")
    examples = [Example(messages=p, tools=[t.name for t in TOOLS], behavior=Behavior.CALLS,
                        calls=[ExpectedCall(name=c.name, arguments=c.arguments)], provenance=Provenance(source=Source.CURATED))
                for p, c in zip(PROMPTS, EXPECTED, strict=True)]
    write_jsonl(examples, data / "test_phrasing.jsonl")
    result = run_eval(EvalConfig(model=str(exports["onnx-int8"]), data_dir=data, output_dir=tmp_path / "eval",
                                 max_new_tokens=40, batch_size=2, splits=["test_phrasing"]))
    assert result.model["kind"] == "onnx"
    assert result.metrics.n == 2 and result.metrics.exact_match.accuracy == 1.0
    assert result.metrics.tokens_per_s > 0


def test_bad_exports_are_refused_with_the_field_named(exports, tmp_path, tiny_base_dir):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="quantize"):
        ExportConfig(source=str(tiny_base_dir), to="merged", quantize="int8")
    with pytest.raises(ConfigError, match="already an export"):
        export_model(ExportConfig(source=str(exports["onnx"]), to="gguf", output_dir=tmp_path / "again"))
    with pytest.raises(ConfigError, match="exists and is not empty"):
        export_model(ExportConfig(source=str(tiny_base_dir), to="onnx", output_dir=exports["onnx"]))
    stranger = tmp_path / "mine"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a tooltune export"):
        export_model(ExportConfig(source=str(tiny_base_dir), to="onnx", output_dir=stranger, overwrite=True))
    assert (stranger / "notes.txt").read_text() == "keep me"
    prompt_only = tmp_path / "prompt"
    prompt_only.mkdir()
    (prompt_only / "prompt_model.json").write_text(json.dumps({"kind": "prompt", "base_model": str(tiny_base_dir), "system": "Be brief."}))
    with pytest.raises(ConfigError, match="prompt-only"):
        export_model(ExportConfig(source=str(prompt_only), to="onnx", output_dir=tmp_path / "p"))
    with pytest.raises(ConfigError, match="adapter already merged"):
        load_model(exports["onnx"], adapter=tmp_path)


def test_a_pre_tokenizer_llama_cpp_lacks_is_refused(tmp_path):
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps({"pre_tokenizer": {"type": "Metaspace", "replacement": "▁"}}))
    with pytest.raises(ConfigError, match="no pre-tokenizer matching"):
        pre_tokenizer_by_structure(path)
    path.write_text(json.dumps({"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}}))
    assert pre_tokenizer_by_structure(path) == "gpt-2"


def test_cli_exports_and_reports_the_size(tmp_path, tiny_base_dir):
    out = tmp_path / "cli-onnx"
    result = subprocess.run([str(Path(sys.executable).parent / "tooltune"), "export", str(tiny_base_dir), "--to", "onnx",
                             "--quantize", "int8", "-o", str(out)], capture_output=True, text=True, timeout=240,
                            env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert "as onnx int8" in result.stdout and "MB" in result.stdout
    assert read_export_info(out).quantize == "int8"
    refused = subprocess.run([str(Path(sys.executable).parent / "tooltune"), "export", str(tiny_base_dir), "--to", "tflite"],
                             capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert refused.returncode == 1 and "to:" in refused.stdout + refused.stderr
