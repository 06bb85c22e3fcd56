"""Hostile files fail fast and clearly: alias bombs, deep nesting, huge numbers and non-JSON
numbers are refused in milliseconds with file:line, through the one YAML loader and the JSON
reader every config, catalog and data reader uses; a bad JSONL record is quarantined with its
file:line and reason and the rest of the file is still read (records in = records out)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from tooltune.errors import DocumentError, TooltuneError
from tooltune.safeload import ALIAS_BUDGET_MIN_NODES, JSONLimitError, YAMLLimitError, load_yaml, loads_json

FIXTURES = Path(__file__).parents[1] / "fixtures"


def billion_laughs(levels: int = 9, width: int = 9, *, flow: bool = True) -> str:
    """Nested anchors, each level using the previous one ``width`` times (1.4 KB for 9x9)."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    prev = "a"
    for i in range(1, levels):
        name = f"l{i}"
        if flow:
            lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * width)}]")
        else:
            lines.append(f"{name}: &{name}\n" + "\n".join(f"  - *{prev}" for _ in range(width)))
        prev = name
    return "\n".join(lines) + "\n"


def merge_bomb(levels: int = 12) -> str:
    """The same growth through merge keys: every mapping merges the previous one twice."""
    lines = ["m0: &m0 {a: 1, b: 2, c: 3}"]
    for i in range(1, levels):
        lines.append(f"m{i}: &m{i} {{x: *m{i - 1}, y: *m{i - 1}, <<: *m{i - 1}}}")
    return "\n".join(lines) + "\n"


YAML_BOMBS = {
    "billion laughs (flow)": (billion_laughs(), "aliases expand the document past"),
    "billion laughs (block)": (billion_laughs(flow=False), "aliases expand the document past"),
    "merge keys": (merge_bomb(), "aliases expand the document past"),
    "deep flow nesting": ("x: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than 64 levels"),
    "deep block nesting": ("".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "v: 1\n",
                           "nested deeper than 64 levels"),
    "100k-digit integer": ("n: " + "7" * 100_000 + "\n", "a number of 100000 characters"),
    "huge float": ("n: 1" + "0" * 5000 + ".5\n", "a number of"),
    "recursive alias": ("a: &a [1, *a]\n", "used inside its own anchor"),
}


@pytest.mark.parametrize("name", list(YAML_BOMBS))
def test_yaml_bombs_fail_in_milliseconds(name: str) -> None:
    text, words = YAML_BOMBS[name]
    started = time.monotonic()
    with pytest.raises(YAMLLimitError, match=words) as caught:
        load_yaml(text)
    assert time.monotonic() - started < 2
    assert caught.value.problem_mark is not None  # the line and column where it happened


def test_anchors_used_the_way_configs_use_them_still_load() -> None:
    text = "defaults: &d {lr: 0.001, epochs: 3}\nruns:\n" + "".join(f"  - {{<<: *d, seed: {i}}}\n" for i in range(200))
    data = load_yaml(text)
    assert data["runs"][199] == {"lr": 0.001, "epochs": 3, "seed": 199}
    assert load_yaml("day: 2024-01-01") == {"day": "2024-01-01"}  # dates stay the text written
    assert load_yaml("x: " + "[" * 60 + "]" * 60) is not None


JSON_BOMBS = {
    "deep array": ("[" * 100_000 + "]" * 100_000, "nested deeper than 64 levels"),
    "deep object": ('{"a": ' * 70 + "1" + "}" * 70, "nested deeper than 64 levels"),
    "100k-digit integer": ('{"n": ' + "1" * 100_000 + "}", "a number of 100000 digits"),
    "overflowing float": ('{"n": 1e999}', "too large for a double"),
    "NaN": ('{"n": NaN}', "JSON has no NaN"),
    "-Infinity": ("[-Infinity]", "JSON has no NaN or Infinity"),
}


@pytest.mark.parametrize("name", list(JSON_BOMBS))
def test_json_bombs_fail_in_milliseconds(name: str) -> None:
    text, words = JSON_BOMBS[name]
    started = time.monotonic()
    with pytest.raises(JSONLimitError, match=words):
        loads_json(text)
    assert time.monotonic() - started < 1


# -- every reader that takes a user's file goes through the limits ---------------------------------


def _readers(tmp_path: Path) -> dict[str, Callable[[Path], Any]]:
    from tooltune.collect.config import CollectConfig
    from tooltune.data.config import DataConfig
    from tooltune.data.curated import load_curated
    from tooltune.ops.prices import load_prices
    from tooltune.pipeline.config import PipelineConfig
    from tooltune.data.publication import PublicationMetadata
    from tooltune.registry.gates import GateConfig
    from tooltune.tools.catalog import ToolCatalog
    from tooltune.tools.discover import discover_file, discover_openapi
    from tooltune.train.config import load_train_config

    catalog = ToolCatalog.load(FIXTURES / "catalogs" / "shop.json")
    return {
        "train config": load_train_config, "data config": DataConfig.from_yaml, "pipeline config": PipelineConfig.load,
        "gates": GateConfig.load, "prices": load_prices, "publish metadata": PublicationMetadata.load,
        "collect services": CollectConfig.load, "tools file": discover_file, "openapi": discover_openapi,
        "catalog": ToolCatalog.load, "curated": lambda p: load_curated(p, catalog),
    }


BAD_FILES = {
    "bomb.yaml": billion_laughs(), "merge.yaml": merge_bomb(), "deep.yaml": "x: " + "[" * 5000 + "]" * 5000,
    "bigint.yaml": "n: " + "7" * 100_000, "deep.json": "[" * 100_000 + "]" * 100_000,
    "bigint.json": '{"n": ' + "1" * 100_000 + "}", "nan.json": '{"n": NaN}', "binary.yaml": b"\xff\xfe\x00bad",
    "empty.json": "",
}


@pytest.mark.parametrize("file", list(BAD_FILES))
@pytest.mark.parametrize("reader", list(_readers(Path())))
def test_every_reader_refuses_hostile_files_with_a_tooltune_error(tmp_path: Path, reader: str, file: str) -> None:
    path = tmp_path / file
    content = BAD_FILES[file]
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    read = _readers(tmp_path)[reader]  # imports first: they are not the reader's time
    started = time.monotonic()
    try:
        read(path)
    except TooltuneError as e:
        assert str(path) in str(e) or path.name in str(e), f"{reader}: the error names the file: {e}"
    assert time.monotonic() - started < 10  # milliseconds when idle; a hang detector on a loaded box


def test_a_directory_or_a_missing_file_is_a_document_error(tmp_path: Path) -> None:
    from tooltune.safeload import read_json, read_yaml

    for read in (read_json, read_yaml):
        with pytest.raises(DocumentError, match="is a folder"):
            read(tmp_path)
        with pytest.raises(DocumentError, match="no such file"):
            read(tmp_path / "missing.yaml")


# -- records in = records out ---------------------------------------------------------------------


def _good_openai() -> dict[str, Any]:
    return json.loads((FIXTURES / "io" / "openai.jsonl").read_text().splitlines()[0])


HOSTILE_LINES = [
    "[" * 100_000 + "]" * 100_000,
    '{"messages": ' + "1" * 100_000 + "}",
    '{"messages": NaN}',
    "not json at all",
    '"a string"',
    "{\"messages\": [{\"role\": \"user\", \"content\": \"\u2028 a line separator inside a string\"}]}",
    json.dumps({"messages": [{"role": ["user"], "content": {"x": 1}}]}),
    json.dumps({"messages": [], "tools": [{"type": "function", "function": {"name": "", "parameters": {}}}]}),
    json.dumps({"messages": [], "tools": "[" * 500 + "]" * 500}),
]


def test_import_quarantines_each_bad_line_and_reads_the_next(tmp_path: Path) -> None:
    from tooltune.data.io import import_file

    good = json.dumps(_good_openai())
    path = tmp_path / "mixed.jsonl"
    lines = [good, *[x for bad in HOSTILE_LINES for x in (bad, good)]]
    path.write_text("\n".join(lines) + "\n")
    started = time.monotonic()
    result = import_file("openai", path)
    assert time.monotonic() - started < 10
    assert len(result.examples) == len(HOSTILE_LINES) + 1 and len(result.quarantine) == len(HOSTILE_LINES)
    assert [q.source for q in result.quarantine] == [f"{path}:{2 * i + 2}" for i in range(len(HOSTILE_LINES))]
    assert all(q.reason for q in result.quarantine)
    assert "nested deeper than 64 levels" in result.quarantine[0].reason[0]
    assert "name is empty" in " ".join(result.quarantine[7].reason)


def test_a_first_line_that_is_an_array_does_not_hide_the_file(tmp_path: Path) -> None:
    from tooltune.data.io import import_file

    path = tmp_path / "tricky.jsonl"
    path.write_text("[]\n" + json.dumps(_good_openai()) + "\n")
    with pytest.raises(TooltuneError, match="tricky.jsonl:2: more text after the JSON array"):
        import_file("openai", path)


def test_log_ingestion_quarantines_each_bad_line(tmp_path: Path) -> None:
    from tooltune.data.feedback import ingest_logs
    from tooltune.tools.catalog import ToolCatalog

    catalog = ToolCatalog.load(FIXTURES / "catalogs" / "shop.json")
    log = {"id": "l1", "messages": [{"role": "user", "content": "Refund pay_1"}], "tools": ["refund_payment"],
           "calls": [{"name": "refund_payment", "arguments": {"payment_id": "pay_1"}}], "outcome": "success"}
    hostile = [*HOSTILE_LINES, json.dumps({**log, "id": "h1", "calls": [{"name": "refund_payment", "arguments": "[" * 3000 + "]" * 3000}]}),
               json.dumps({**log, "id": "h2", "calls": [{"name": "refund_payment", "arguments": '{"n": ' + "9" * 5000 + "}"}]})]
    path = tmp_path / "logs.jsonl"
    # Distinct ids: a later line with the same id is the same turn updated (feedback), not another turn.
    path.write_text("\n".join(x for i, bad in enumerate(hostile) for x in (bad, json.dumps({**log, "id": f"l{i}"}))) + "\n")
    loaded = ingest_logs(path, catalog)
    assert len(loaded.examples) + len(loaded.review) == 2 * len(hostile)
    assert {r.source for r in loaded.review} >= {f"{path}:{2 * i + 1}" for i in range(len(hostile))}


# -- property tests: the readers only ever fail the documented way --------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=30,
)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@FAST
@given(json_values)
def test_json_within_limits_reads_as_the_standard_library_does(value: Any) -> None:
    text = json.dumps(value)
    assert loads_json(text) == json.loads(text)


@FAST
@given(st.text(alphabet=st.sampled_from('[]{}",:0123456789.eE-+ aNInfityfalsetrunul\\\n'), max_size=300))
def test_any_text_is_json_or_a_json_error(text: str) -> None:
    try:
        loads_json(text)
    except json.JSONDecodeError:
        pass


@FAST
@given(st.text(alphabet=st.sampled_from("&*ab[]{}:,- \n!<>|'\"0123456789.#%@`?"), max_size=200))
def test_any_text_is_yaml_or_a_yaml_error(text: str) -> None:
    try:
        load_yaml(text)
    except yaml.YAMLError:
        pass


@FAST
@given(st.integers(1, 12), st.integers(1, 12))
def test_alias_expansion_is_bounded_whatever_the_shape(levels: int, width: int) -> None:
    sizes = [10]  # nodes of level 0 (a list of nine scalars), then each level's list of `width` copies
    for _ in range(1, levels):
        sizes.append(1 + width * sizes[-1])
    added = sum(width * size for size in sizes[:-1])  # what the aliases add, all levels together
    try:
        load_yaml(billion_laughs(levels, width))
    except YAMLLimitError:
        assert added > ALIAS_BUDGET_MIN_NODES  # refused exactly when past the budget
    else:
        assert added <= ALIAS_BUDGET_MIN_NODES


def _paths(value: Any, prefix: tuple = ()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


def _seeds(name: str) -> list[Any]:
    text = (FIXTURES / "io" / name).read_text()
    if text.lstrip().startswith("["):
        return json.loads(text)
    out = []
    for line in text.split("\n"):
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


IMPORT_SEEDS = {"openai": "openai.jsonl", "sharegpt": "sharegpt.jsonl", "chatml": "chatml.jsonl",
                "alpaca": "alpaca.jsonl", "glaive": "glaive.json", "xlam": "xlam.json"}
odd_values = json_values | st.sampled_from(["", "{", "[]", "<tool_call>\n{\"name\": 5}\n</tool_call>", '[{"name": ""}]'])


@pytest.mark.parametrize("fmt", list(IMPORT_SEEDS))
def test_import_fuzz_records_in_equal_records_out(tmp_path: Path, fmt: str) -> None:
    """Real records of each format with fields replaced by values of the wrong shape: every record
    comes out as an example or a quarantine entry, and nothing raises."""
    from tooltune.data.io import import_file

    seeds = [s for s in _seeds(IMPORT_SEEDS[fmt]) if isinstance(s, dict)]

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.data())
    def run(data: st.DataObject) -> None:
        records = []
        for _ in range(2):
            record = json.loads(json.dumps(data.draw(st.sampled_from(seeds))))
            for _ in range(data.draw(st.integers(1, 3))):
                path = data.draw(st.sampled_from([p for p in _paths(record) if p]))
                parent = record
                for key in path[:-1]:
                    parent = parent[key]
                parent[path[-1]] = data.draw(odd_values)
            records.append(record)
        file = tmp_path / "fuzz.jsonl"
        file.write_text("\n".join(json.dumps(r) for r in records) + "\n")
        result = import_file(fmt, file)
        assert len(result.examples) + len(result.quarantine) == len(records)

    run()
