"""The merged export: a LoRA run folded into its base (PEFT ``merge_and_unload``, done by
:func:`~tooltune.runtime.model.load_model`) and saved as a plain Hugging Face directory.

It loads anywhere transformers does (``AutoModelForCausalLM.from_pretrained(dir)``, vLLM without
``--enable-lora``), and it is the input of the GGUF converter. A full-weights run or a base model
is saved the same way, so every export starts from one layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tooltune.runtime.quiet import no_progress_bars


def write_merged(loaded: Any, out: Path) -> list[str]:
    """Save ``loaded`` (a merged :class:`~tooltune.runtime.model.LoadedModel`) into ``out``; returns
    the weight and config files written."""
    before = set(out.iterdir()) if out.exists() else set()
    with no_progress_bars():
        loaded.model.save_pretrained(str(out))
    weights = sorted(p.name for p in set(out.iterdir()) - before)
    save_tokenizer(loaded, out)
    return weights


def save_tokenizer(loaded: Any, out: Path) -> None:
    """The source's tokenizer, with the template :func:`render_chat` uses for it written in, so
    other runtimes (vLLM, llama.cpp) render the bytes the model was trained on."""
    from tooltune.formats.chat import chat_setup

    tokenizer = loaded.tokenizer
    tokenizer.chat_template = chat_setup(tokenizer).template
    tokenizer.save_pretrained(str(out))
