"""Fuzz every registered tool-call parser with random text; report speed and result kinds.

    .venv/bin/python benchmarks/parse_fuzz.py [--n 100000] [--seed 0]

Half the strings are random Unicode (control characters and lone surrogates included); the
other half are near misses: valid renders of every format that are truncated, have characters
deleted or markup fragments inserted, or are joined from fragments like ``<tool_call>`` and
``[f(``. Each format module's raw ``parse`` is called (not the registry's safe wrapper), so an
exception escaping a parser is counted here instead of being hidden. The run fails (exit 1) if
any parser raised.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import tooltune.formats
from tooltune.formats import ParseResult, format_names, get_format
from tooltune.runtime.machine import machine_line
from tooltune.tools.call import ToolCall

FRAGMENTS = [
    "<tool_call>", "</tool_call>", "<functioncall>", "<|endoftext|>", "{", "}", "[", "]", "(", ")", '"name"',
    '"arguments"', '"parameters"', '"tool_call"', '"tool_calls"', '"function"', '"role"', '"type"', '"id"', ":",
    ",", "'", '"', "\\", "[f(", "math.", "a=", "**", "1", "-", "1e999", "NaN", "Infinity", "null", "true",
    "True", "None", "\n", " ", "```json\n", "```", "'{", "}'", "\x00", "\ud800", "1and", '"s"(', "f", "get_weather", "x",
]
SAMPLE_CALLS = [
    [ToolCall("get_weather", {"city": "Paris", "units": "metric"})],
    [ToolCall("math.factorial", {"n": 5}), ToolCall("search", {"q": "it's \"quoted\"", "k": [1, 2.5, None]})],
    [ToolCall("noop", {}), ToolCall("a.b", {"nested": {"x y": [True, False, {"z": -1e-300}]}})],
]


@dataclass
class Stats:
    seconds: float = 0.0
    kinds: Counter = field(default_factory=Counter)
    exceptions: int = 0
    examples: list[str] = field(default_factory=list)
    """The first few inputs that raised, with the exception."""


def raw_parsers() -> dict[str, Callable[[str], ParseResult]]:
    """Each registered format's own ``parse``, found through the modules' ``NAME`` constants."""
    parsers = {}
    for info in pkgutil.iter_modules(tooltune.formats.__path__):
        module = importlib.import_module(f"tooltune.formats.{info.name}")
        if hasattr(module, "NAME") and hasattr(module, "parse"):
            parsers[module.NAME] = module.parse
    missing = set(format_names()) - set(parsers)
    if missing:
        raise SystemExit(f"parse_fuzz: no module with NAME = {sorted(missing)}; give each format module a NAME constant.")
    return parsers


def random_unicode(rng: random.Random) -> str:
    chars = []
    for _ in range(rng.randrange(0, 100)):
        roll = rng.random()
        if roll < 0.5:
            chars.append(chr(rng.randrange(32, 127)))
        elif roll < 0.6:
            chars.append(chr(rng.randrange(0, 32)))
        else:
            chars.append(chr(rng.randrange(0, 0x110000)))
    return "".join(chars)


def near_miss(rng: random.Random, renders: list[str]) -> str:
    roll = rng.random()
    if roll < 0.25:
        return "".join(rng.choice(FRAGMENTS) for _ in range(rng.randrange(1, 30)))
    text = rng.choice(renders)
    if roll < 0.5:
        return text[: rng.randrange(len(text) + 1)]
    for _ in range(rng.randrange(1, 4)):
        pos = rng.randrange(len(text) + 1)
        if rng.random() < 0.5:
            text = text[:pos] + text[pos + 1 :]
        else:
            text = text[:pos] + rng.choice(FRAGMENTS) + text[pos:]
    return text


def make_inputs(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    renders = [get_format(name).render(calls) for name in format_names() for calls in SAMPLE_CALLS]
    return [random_unicode(rng) if i % 2 == 0 else near_miss(rng, renders) for i in range(n)]


def run(n: int = 100_000, seed: int = 0) -> dict[str, Stats]:
    """Feed ``n`` seeded strings through every raw parser; one Stats per format."""
    inputs = make_inputs(n, seed)
    results = {}
    for name, parse in sorted(raw_parsers().items()):
        stats = Stats()
        start = time.perf_counter()
        for text in inputs:
            try:
                stats.kinds[parse(text).kind.value] += 1
            except Exception as e:  # noqa: BLE001 - counting escapes is the point of this script
                stats.exceptions += 1
                if len(stats.examples) < 5:
                    stats.examples.append(f"{text!r}: {type(e).__name__}: {e}")
        stats.seconds = time.perf_counter() - start
        results[name] = stats
    return results


def report(results: dict[str, Stats], n: int) -> str:
    lines = [f"{'format':<10} {'strings/s':>10} {'no_call':>8} {'calls':>8} {'malformed':>9} {'raised':>7}"]
    for name, s in results.items():
        rate = n / s.seconds if s.seconds else float("inf")
        lines.append(
            f"{name:<10} {rate:>10,.0f} {s.kinds['no_call']:>8} {s.kinds['calls']:>8} {s.kinds['malformed']:>9} {s.exceptions:>7}"
        )
        lines.extend(f"    raised on {example}" for example in s.examples)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="number of random strings")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    args = parser.parse_args(argv)
    results = run(args.n, args.seed)
    print(machine_line())
    print(f"{args.n:,} strings, seed {args.seed}")
    print(report(results, args.n))
    return 1 if any(s.exceptions for s in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
