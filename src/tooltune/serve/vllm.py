"""Scale-out: the ``vllm serve`` command line for the same base, adapters, template and parser.

vLLM serves one base with many LoRA adapters (``--enable-lora``, one ``--lora-modules
NAME=PATH`` per adapter, ``--max-lora-rank`` at least the largest adapter rank), reads tool calls
with a named parser (``--tool-call-parser``, with ``--enable-auto-tool-choice``), and renders with
the template given by ``--chat-template``. The template written out is the one tooltune trains
and evaluates with (:func:`tooltune.formats.chat.chat_setup`), and the parser is the vLLM parser
of the same call format, so vLLM reads the model's output as tooltune's evaluation does.

Flags checked against the vLLM documentation of ``vllm/entrypoints/openai/cli_args.py`` and
the engine arguments (vLLM 0.11–0.12, ``FrontendArgs`` / ``EngineArgs``): ``--lora-modules``
takes ``name=path`` items, ``--max-lora-rank`` one of :data:`VLLM_LORA_RANKS`.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from pydantic import BaseModel, Field

from tooltune.errors import ConfigError
from tooltune.runtime.model import ADAPTER_CONFIG_FILE
from tooltune.serve.settings import BASE_NAME, ServeSettings

VLLM_TOOL_PARSERS = {"hermes": "hermes", "pythonic": "pythonic"}
"""tooltune call format → the vLLM tool parser that reads the same text."""
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""The values vLLM accepts for --max-lora-rank."""
TEMPLATE_FILE = "chat_template.jinja"
SCRIPT_FILE = "vllm-serve.sh"


class VllmPlan(BaseModel):
    """The command and the files it needs."""

    argv: list[str]
    chat_template: Path = Field(description="The training template, written out for --chat-template.")
    script: Path = Field(description="A shell script running argv.")
    tool_parser: str
    max_lora_rank: int | None
    notes: list[str] = Field(default_factory=list, description="Things to check before launching.")

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


def vllm_plan(settings: ServeSettings, out_dir: str | Path) -> VllmPlan:
    """Write the chat template and a launch script to ``out_dir``; return the ``vllm serve`` command."""
    from transformers import AutoTokenizer

    from tooltune.formats.chat import chat_setup
    from tooltune.runtime.names import resolve_model_name

    base = resolve_model_name(settings.model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(base)
    except (OSError, ValueError) as e:
        raise ConfigError(f"model: cannot load the tokenizer of {base!r}: {e}") from e
    setup = chat_setup(tokenizer)
    parser = VLLM_TOOL_PARSERS.get(setup.call_format.name)
    if parser is None:
        raise ConfigError(f"model: {settings.model} writes tool calls in the {setup.call_format.name!r} format, which no "
                          f"built-in vLLM parser reads (known: {', '.join(VLLM_TOOL_PARSERS)}); write a vLLM "
                          "--tool-parser-plugin for it or serve with --engine transformers.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    template = out_dir / TEMPLATE_FILE
    template.write_text(setup.template)
    notes: list[str] = []
    ranks = [_lora_rank(name, Path(path), setup.template, notes) for name, path in settings.adapters.items()]
    argv = ["vllm", "serve", base, "--host", settings.host, "--port", str(settings.port),
            "--served-model-name", BASE_NAME, "--enable-auto-tool-choice", "--tool-call-parser", parser,
            "--chat-template", str(template.resolve())]
    if settings.dtype != "auto":
        argv += ["--dtype", {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}.get(settings.dtype, settings.dtype)]
    max_rank = None
    if ranks:
        max_rank = next((r for r in VLLM_LORA_RANKS if r >= max(ranks)), None)
        if max_rank is None:
            raise ConfigError(f"adapters: rank {max(ranks)} exceeds vLLM's largest --max-lora-rank {VLLM_LORA_RANKS[-1]}.")
        argv += ["--enable-lora", "--max-loras", str(len(ranks)), "--max-lora-rank", str(max_rank), "--lora-modules",
                 *[f"{name}={Path(path).resolve()}" for name, path in settings.adapters.items()]]
    if parser == "hermes" and "<tool_call>" not in tokenizer.get_vocab():
        notes.append("vLLM's hermes parser looks up <tool_call> and </tool_call> as single tokens; this tokenizer has "
                     "them only as text, so check the parser accepts it with your vLLM version.")
    if settings.constrained:
        notes.append("--constrained has no vLLM flag: vLLM already constrains tool_choice required / named; pass "
                     "guided decoding per request for auto.")
    script = out_dir / SCRIPT_FILE
    script.write_text("#!/bin/sh\n# Written by `tooltune serve --engine vllm`.\nexec " + shlex.join(argv) + ' "$@"\n')
    script.chmod(0o755)
    return VllmPlan(argv=argv, chat_template=template, script=script, tool_parser=parser, max_lora_rank=max_rank, notes=notes)


def _lora_rank(name: str, path: Path, template: str, notes: list[str]) -> int:
    config_file = path / ADAPTER_CONFIG_FILE
    if not config_file.is_file():
        raise ConfigError(f"adapter {name}: {path} is not a LoRA run (no {ADAPTER_CONFIG_FILE}); vLLM serves LoRA adapters "
                          "on one base, so serve a full-weights run as its own `vllm serve` model.")
    try:
        config = json.loads(config_file.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"{config_file}: cannot read it: {e}") from e
    ranks = [int(config.get("r") or 0), *(int(v) for v in (config.get("rank_pattern") or {}).values())]
    own_template = path / TEMPLATE_FILE
    if own_template.is_file() and own_template.read_text() != template:
        notes.append(f"adapter {name}: its run saved a chat template different from the base's; vLLM renders every "
                     "adapter with the one --chat-template.")
    return max(ranks)
