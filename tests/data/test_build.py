"""build_dataset end to end: files, report, error gate, contamination gate, YAML config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tooltune.data.build import SPLIT_FILES, build_dataset, report_dataset
from tooltune.data.config import DataConfig, build_config
from tooltune.data.examples import read_jsonl
from tooltune.data.quality import exact_key
from tooltune.data.quarantine import read_quarantine
from tooltune.data.split import template_key
from tooltune.demo import build_server
from tooltune.demo.chains import CHAINS
from tooltune.errors import ConfigError, DataError

FIXTURES = Path(__file__).parents[1] / "fixtures"
CATALOG = FIXTURES / "catalogs" / "shop.json"
CURATED = Path(__file__).parents[2] / "src" / "tooltune" / "demo" / "curated" / "shop.yaml"
STATES = ["awaiting_shipment", "shipped", "delivered", "cancelled"]
NAMES = ["Maria Garcia", "John Smith", "Mateo Rossi", "Noah Williams", "Ana Lima", "Li Wei", "Sara Cohen", "Omar Haddad"]


def curated_file(path: Path, entries: list[dict]) -> Path:
    path.write_text(yaml.safe_dump({"service": "shop", "training_examples": entries}, sort_keys=False))
    return path


def name_lookups(typo: bool = False) -> list[dict]:
    """Distinct requests, one per customer name and wording (typo=True: the same with one typo)."""
    frames = ["Find the customer called {n} in our records please", "Who is {n}? Look the customer up for me",
              "I need the customer profile of {n} right away", "Pull up everything we know about customer {n}"]
    out = []
    for n in NAMES:
        for f in frames:
            text = f.format(n=n)
            out.append({"user_query": text.replace("customer", "custmer", 1) if typo else text,
                        "correct_tool": "get_customer_by_name", "correct_parameters": {"name": n}})
    return out


def test_build_writes_every_file_and_a_consistent_report(tmp_path):
    config = DataConfig(catalog=CATALOG, curated=[CURATED, curated_file(tmp_path / "more.yaml", name_lookups())],
                        output_dir=tmp_path / "data", dedup_backend="lexical", seed=3)
    report = build_dataset(config)
    out = config.output_dir
    for name in (*SPLIT_FILES, "quarantine", "report", "catalog"):
        assert (out / f"{name}.{'json' if name in ('report', 'catalog') else 'jsonl'}").exists(), name
    splits = {n: list(read_jsonl(out / f"{n}.jsonl")) for n in SPLIT_FILES}
    assert report.split_sizes == {n: len(v) for n, v in splits.items()} and report.sources == {"curated": sum(report.split_sizes.values())}
    held = set(report.held_out_tools)
    assert held and not any(held & ({c.name for c in e.calls} | set(e.tools)) for e in splits["train"])
    assert sum(report.contamination["exact"].values()) == sum(report.contamination["near"].values()) == 0
    train_keys = {exact_key(e) for e in splits["train"]}
    assert not any(exact_key(e) in train_keys for n in SPLIT_FILES[1:] for e in splits[n])
    assert all(0 <= e.meta["quality"] <= 1 for e in splits["train"])
    assert report.dedup["backend"] == "lexical-fallback" and report.quarantine == 0
    assert sum(report.behavior_mix.values()) == sum(report.split_sizes.values())
    saved = report_dataset(out)
    assert saved["matches_build"] and saved["dataset_hash"] == report.dataset_hash
    again = build_dataset(config)  # same inputs, same dataset
    assert again.dataset_hash == report.dataset_hash


def test_small_synthetic_build_end_to_end(tmp_path):
    config = DataConfig(catalog=CATALOG, curated=[CURATED], synthetic=300, seed=5, output_dir=tmp_path, dedup_backend="lexical")
    report = build_dataset(config, chains=CHAINS, server_factory=build_server)
    assert report.sources["synthetic"] == 300 and report.invalid == 0
    assert all(report.split_sizes[n] > 0 for n in SPLIT_FILES), report.split_sizes
    assert all(report.behavior_mix[b] > 0 for b in ("calls", "parallel", "multi_step", "clarify", "no_call"))
    assert sum(report.contamination["exact"].values()) + sum(report.contamination["near"].values()) == 0
    splits = {n: list(read_jsonl(tmp_path / f"{n}.jsonl")) for n in SPLIT_FILES}
    ids = [e.id for items in splits.values() for e in items]
    assert len(ids) == len(set(ids))
    trained = {template_key(e) for e in splits["train"]}
    assert not trained & {template_key(e) for e in splits["test_phrasing"] + splits["test_multistep"]}
    linked = [e for items in splits.values() for e in items if e.provenance.source.value == "curated" and "template_id" in e.meta]
    assert linked  # curated requests reworded by synthesis share their rewordings' template
    held = set(report.held_out_tools)
    assert not any(held & ({c.name for c in e.calls} | set(e.tools)) for e in splits["train"] + splits["val"])
    assert json.loads((tmp_path / "report.json").read_text())["dataset_hash"] == report.dataset_hash


def test_report_notices_edited_files(tmp_path):
    config = DataConfig(catalog=CATALOG, curated=[CURATED], output_dir=tmp_path, semantic_dedup=False, max_near_dup_contamination=None)
    build_dataset(config)
    train = (tmp_path / "train.jsonl").read_text().splitlines()
    (tmp_path / "train.jsonl").write_text("\n".join(train[1:]) + "\n")
    report = report_dataset(tmp_path)
    assert not report["matches_build"] and report["split_sizes"]["train"] == len(train) - 1


def test_invalid_records_are_quarantined_and_fail_only_above_the_limit(tmp_path):
    bad = [{"user_query": f"List {s} orders, limit {i}", "correct_tool": "get_orders",
            "correct_parameters": {"fulfillment_state": "lost"}} for i, s in enumerate(STATES)]
    files = [CURATED, curated_file(tmp_path / "bad.yaml", bad)]
    report = build_dataset(DataConfig(catalog=CATALOG, curated=files, output_dir=tmp_path / "ok", dedup_backend="lexical"))
    assert report.invalid == report.quarantine == 4
    assert [r.source.split(":")[0] for r in read_quarantine(tmp_path / "ok" / "quarantine.jsonl")] == [str(tmp_path / "bad.yaml")] * 4
    with pytest.raises(DataError, match=r"4 of \d+ records \(\d+\.\d%\) are invalid, above max_error_fraction 2%") as e:
        build_dataset(DataConfig(catalog=CATALOG, curated=files, output_dir=tmp_path / "strict", max_error_fraction=0.02))
    assert "quarantine.jsonl" in str(e.value) and (tmp_path / "strict" / "quarantine.jsonl").exists()


def test_near_duplicate_leak_fails_the_build(tmp_path):
    files = [curated_file(tmp_path / "a.yaml", name_lookups()), curated_file(tmp_path / "b.yaml", name_lookups(typo=True))]
    config = DataConfig(catalog=CATALOG, curated=files, output_dir=tmp_path / "leaky", semantic_dedup=False,
                        dedup_backend="lexical", max_near_dup_contamination=0.0, held_out_tools=["refund_payment"])
    with pytest.raises(DataError, match=r"near-duplicate train at cosine >= 0.95 \(allowed: 0.0%\)"):
        build_dataset(config)
    report = build_dataset(config.model_copy(update={"semantic_dedup": True, "output_dir": tmp_path / "clean"}))
    assert report.dedup["semantic"] > 0 and sum(report.contamination["near"].values()) == 0


def test_yaml_config_resolves_paths_and_reports_every_bad_field(tmp_path):
    (tmp_path / "data.yaml").write_text(yaml.safe_dump({"catalog": "shop.json", "curated": ["c/shop.yaml"], "seed": 7}))
    config = DataConfig.from_yaml(tmp_path / "data.yaml", output_dir=Path("/tmp/x"))
    assert config.catalog == tmp_path / "shop.json" and config.curated == [tmp_path / "c" / "shop.yaml"]
    assert config.seed == 7 and config.output_dir == Path("/tmp/x")
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"near_dup_threshold": 2, "min_quality": -1, "sede": 1}))
    with pytest.raises(ConfigError) as e:
        DataConfig.from_yaml(tmp_path / "bad.yaml")
    lines = str(e.value).splitlines()[1:]
    assert [line.split(": ")[1] for line in lines] == ["min_quality", "near_dup_threshold", "sede"]
    assert lines[0].startswith(f"  {tmp_path / 'bad.yaml'}:")  # the file and the line of the field
    assert lines[2].endswith("sede: unknown field; did you mean 'seed'?")
    with pytest.raises(ConfigError, match=r"phrasing_fraction \+ val_fraction \+ holdout_fraction is 1.1"):
        build_config({"val_fraction": 0.5, "holdout_fraction": 0.5})
    with pytest.raises(ConfigError, match="catalog is required"):
        build_dataset(DataConfig())
    assert "seeded-random" in DataConfig.field_help()["held_out_tools"]


def test_report_renders_as_tables(tmp_path):
    from rich.console import Console

    from tooltune.data.report import build_progress, render_report

    console = Console(record=True, width=160)
    with build_progress(console) as progress:
        build_dataset(DataConfig(catalog=CATALOG, curated=[CURATED], output_dir=tmp_path, dedup_backend="lexical"), progress=progress)
    render_report(report_dataset(tmp_path), console)
    text = console.export_text()
    assert "lexical-fallback" in text and "test_zero_shot" in text and "(held out)" in text and "create_payment" in text
