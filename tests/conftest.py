"""Shared fixtures: tiny tokenizers built locally in milliseconds (no model hub needed)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"

# Tests compare exact outputs, logits and losses: `precision: auto` / `dtype: auto` stay fp32 on
# every machine (no bf16 on an AMX CPU, no probe); subprocesses inherit it.
# tests/train/test_precision.py unsets it to test the choice itself.
os.environ["TOOLTUNE_PRECISION"] = "fp32"
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def free_port() -> int:
    """A loopback port nothing listens on (free when asked) for a real server under test."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
    """Terminate a server subprocess, and kill it if it has not exited after ``timeout`` s."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def build_tiny_tokenizer(chat_template: str | None = None):
    """A byte-level BPE tokenizer trained on a few lines, optionally with a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = ['<tool_call>\n{"name": "create_payment", "arguments": {"amount": 5000}}\n</tool_call>',
              "Charge John fifty dollars for invoice INV-1001.", "What is the weather in Paris?"] * 20
    tok.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
    )
    if chat_template is not None:
        fast.chat_template = chat_template
    return fast


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """The dequantized SmolLM2-135M-Instruct directory (made once per machine, in the user's cache)."""
    from tooltune.errors import ConfigError
    from tooltune.runtime.pretrained import resolve_pypi_model

    pytest.importorskip("gguf")
    try:
        return resolve_pypi_model("pypi:smollm2-135m-instruct")
    except ConfigError as e:  # make setup installs it; a bare pip install -e . does not
        pytest.skip(f"SmolLM2 package not installed: {e}")


@pytest.fixture(scope="session")
def real_smollm2(smollm2_dir):
    """SmolLM2-135M-Instruct loaded once for the session (eval mode, fp32, CPU)."""
    from tooltune.runtime.model import load_model

    return load_model("pypi:smollm2-135m-instruct", device="cpu")


@pytest.fixture(scope="session")
def tiny_base_dir() -> Path:
    """The tests' tiny base model: a 1.25M-parameter Llama trained from scratch, committed in
    tests/fixtures/tiny_base/model/ (its recipe and README beside it). It loads and generates in
    milliseconds and writes pythonic calls. Shared by every test: copy it before changing it."""
    from tests.fixtures.tiny_base.recipe import TINY_BASE_DIR

    return TINY_BASE_DIR


@pytest.fixture
def tiny_tokenizer():
    return build_tiny_tokenizer()


@pytest.fixture
def make_tokenizer():
    """Factory: ``make_tokenizer(chat_template_or_None)`` → a fresh tiny tokenizer."""
    return build_tiny_tokenizer


@pytest.fixture(scope="session")
def shop_catalog_dict() -> dict:
    """A small hand-written catalog in the shape users write (independent of the demo server)."""
    return {
        "tools": [
            {
                "name": "create_payment",
                "description": "Create a payment. amount is in cents.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "amount": {"type": "integer", "description": "Amount in cents"},
                        "currency": {"type": "string", "enum": ["USD", "EUR"], "default": "USD"},
                        "invoice_id": {"type": "string", "description": "Invoice to pay"},
                        "customer_id": {"type": "string", "description": "Paying customer"},
                    },
                    "required": ["amount", "invoice_id", "customer_id"],
                },
            },
            {
                "name": "get_orders",
                "description": "List orders by fulfillment state.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "fulfillment_state": {
                            "type": "string",
                            "enum": ["awaiting_shipment", "shipped", "delivered", "cancelled"],
                        },
                        "limit": {"type": "integer", "minimum": 1},
                    },
                    "required": ["fulfillment_state"],
                },
            },
        ]
    }


@pytest.fixture(scope="session", autouse=True)
def _code_sandbox_mode():
    """The code service confines Bash with bubblewrap; on a developer machine without it, the
    demo tests run it with argument checks only (``TOOLTUNE_CODE_SANDBOX=off``). CI installs
    bubblewrap and sets ``TOOLTUNE_REQUIRE_SANDBOX=1``, so there every test runs confined and
    tests/security fails rather than skips."""
    import os
    import shutil

    if shutil.which("bwrap") is None and os.environ.get("TOOLTUNE_REQUIRE_SANDBOX") != "1":
        os.environ.setdefault("TOOLTUNE_CODE_SANDBOX", "off")
    yield
