"""The rich views the CLI prints: rendered to text and checked for the facts they must show."""

import pytest
from rich.console import Console

from tooltune.errors import GateError
from tooltune.registry import Registry
from tooltune.registry.present import decision_table, diff_view, history_table, model_view, models_table


def render(renderable) -> str:
    console = Console(record=True, width=220, color_system=None)
    console.print(renderable)
    return console.export_text()


@pytest.fixture(scope="module")
def populated(tmp_path_factory, catalogs, metrics):
    registry = Registry(f"sqlite:///{tmp_path_factory.mktemp('present') / 'r.db'}")

    def reg(catalog, accuracy, **sections):
        return registry.register_model("shop-agent", kind="adapter", base_model="Qwen/Qwen2.5-0.5B-Instruct",
                                       artifact_path=f"runs/{catalog}", catalog=catalogs[catalog],
                                       config={"lora": {"r": 16 if catalog == "v1" else 32}},
                                       evaluation=metrics(accuracy, **sections))

    reg("v1", 0.90)
    registry.deploy("shop-agent", "1.0.0", actor="alice", notes="[first] release")
    reg("v2", 0.93, per_category={"simple": 0.99, "parallel": 0.80, "irrelevance": 0.95})
    with pytest.raises(GateError):
        registry.deploy("shop-agent", "1.1.0", actor="ci")
    third = reg("v1b", 0.91)  # drops the v2 tool again: breaking, 2.0.0
    registry.deploy("shop-agent", third.version, actor="bob")
    registry.rollback("shop-agent", actor="bob", notes="latency")
    yield registry
    registry.close()


def test_models_table_shows_versions_status_and_live(populated):
    text = render(models_table(populated.list_models()))
    assert "1.1.0" in text and "evaluated" in text
    row = next(line for line in text.splitlines() if "1.0.0" in line)
    assert "deployed" in row and "all" in row and "Qwen/Qwen2.5-0.5B-Instruct" in row


def test_model_view_shows_details_evaluation_and_last_decision(populated):
    text = render(model_view(populated.get_model("shop-agent", "1.1.0"), populated.evaluations("shop-agent", "1.1.0"),
                             populated.decisions("shop-agent", "1.1.0")))
    assert "shop-agent@1.1.0" in text and "runs/v2" in text
    assert "category:parallel" in text and "80.0%" in text
    assert "blocked" in text and "FAIL" in text and "category_regression:parallel" in text and "-10.0" in text


def test_decision_table_lists_failed_checks_first(populated):
    [decision] = populated.decisions("shop-agent", "1.1.0")
    lines = [line for line in render(decision_table(decision)).splitlines() if "pass" in line or "FAIL" in line]
    assert "FAIL" in lines[0] and all("pass" in line for line in lines[1:])


def test_history_and_diff_views(populated):
    history = render(history_table(populated.history("shop-agent"))).splitlines()
    rollback = next(line for line in history if "rollback" in line)
    assert "1.0.0" in rollback and "2.0.0" in rollback and "latency" in rollback  # to 1.0.0, replacing 2.0.0
    first = next(line for line in history if "alice" in line)
    assert "deploy" in first and "[first] release" in first  # notes are not read as rich markup
    text = render(diff_view(populated.diff_models("shop-agent@1.0.0", "shop-agent@1.1.0")))
    assert "config.lora.r" in text and "16" in text and "32" in text
    assert "tool_added" in text and "refund" in text and "catalog: minor" in text
    assert "category:parallel" in text and "-10.0" in text
