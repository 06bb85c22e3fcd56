"""Teacher paraphrases: an OpenAI-compatible chat endpoint rewords synthetic requests.

Templates give structure; a teacher model gives wording no template has. Any server that speaks
the OpenAI chat-completions API works (vLLM, llama.cpp, Ollama, a hosted API): it is called
through the official ``openai`` SDK with ``base_url``. The API key is read from
``TOOLTUNE_TEACHER_API_KEY`` (else ``OPENAI_API_KEY``); local servers usually need none.

A paraphrase is only kept when it still carries the call: every argument value the call copies
verbatim (ids, emails, names, paths) and every number of the original request must appear in
it. Rejected paraphrases leave the example as the template worded it, and are counted by
reason in ``stats["teacher"]``; a failed request is counted the same way.
"""

from __future__ import annotations

import os
import random
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from tooltune.data.examples import REFERENCE, Example, string_values


class TeacherFields(Protocol):
    """The fields of :class:`~tooltune.data.synth.SynthConfig` a teacher reads (synth calls the
    teacher, so the teacher does not import synth back)."""

    seed: int
    teacher_url: str | None
    teacher_model: str | None
    teacher_rate: float
    teacher_workers: int

SYSTEM_PROMPT = (
    "You rewrite requests that a user sends to an assistant. Reword the request so it says the same "
    "thing in different words, as a real user might type it. Keep every id, email address, file path, "
    "name, quoted text, date, amount and number exactly as written. Do not answer the request. "
    "Reply with the rewritten request only, on one line."
)
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")


def paraphrase(examples: list[Example], config: TeacherFields, stats: dict[str, Any]) -> list[Example]:
    """Reword a seeded ``config.teacher_rate`` share of ``examples`` in place; returns them."""
    from openai import OpenAI  # imported here: only runs with a teacher configured

    rng = random.Random(f"{config.seed}/teacher")
    chosen = [i for i in range(len(examples)) if rng.random() < config.teacher_rate]
    key = os.environ.get("TOOLTUNE_TEACHER_API_KEY") or os.environ.get("OPENAI_API_KEY") or "unused"
    counts: Counter[str] = Counter()
    with OpenAI(base_url=config.teacher_url, api_key=key, max_retries=1, timeout=60.0) as client:
        replies = _ask_all(client, examples, chosen, config)
    for index, (reply, error) in zip(chosen, replies):
        if error:
            counts[f"error:{error}"] += 1
            continue
        example = examples[index]
        problem = paraphrase_problem(example, reply)
        if problem:
            counts[f"rejected:{problem}"] += 1
            continue
        original = example.user_text
        example.messages = [*example.messages[:-1], {**example.messages[-1], "content": reply.strip()}]
        example.meta = {**example.meta, "paraphrased_by": config.teacher_model, "template_text": original}
        counts["accepted"] += 1
    stats["teacher"] = {"asked": len(chosen), **dict(sorted(counts.items()))}
    return examples


def _ask_all(client: Any, examples: list[Example], chosen: list[int], config: TeacherFields) -> list[tuple[str, str]]:
    """(reply, "") or ("", error type name) per chosen example, in order."""

    def ask(index: int) -> tuple[str, str]:
        try:
            reply = client.chat.completions.create(
                model=config.teacher_model or "", temperature=0.7, seed=config.seed + index,
                messages=[{"role": "system", "content": SYSTEM_PROMPT},
                          {"role": "user", "content": examples[index].user_text}])
            return reply.choices[0].message.content or "", ""
        except Exception as e:  # noqa: BLE001 - any transport or API failure just keeps the template wording
            return "", type(e).__name__

    with ThreadPoolExecutor(max_workers=config.teacher_workers) as pool:
        return list(pool.map(ask, chosen))  # map keeps input order: results stay deterministic


def paraphrase_problem(example: Example, reply: str) -> str | None:
    """Why ``reply`` cannot replace the example's request (a reason code), or ``None``."""
    text = reply.strip()
    original = example.user_text
    if not text:
        return "empty"
    if "\n" in text or len(text) > 3 * len(original) + 80:
        return "too_long"
    if text == original:
        return "unchanged"
    missing = [v for v in verbatim_values(example) if v not in text]
    if missing:
        return "missing_value"
    if any(n not in text for n in _NUMBER.findall(original)):
        return "missing_number"
    return None


def verbatim_values(example: Example) -> list[str]:
    """String argument values the request spells out and the call copies as they are."""
    original = example.user_text
    return [v for call in example.calls for v in string_values(call.arguments)
            if v in original and not REFERENCE.search(v)]
