"""Subprocess for test_crash: registers a model with its evaluation and stalls inside the
transaction (both rows flushed, nothing committed) until the test SIGKILLs it."""

import importlib.util
import sys
import time
import types
from pathlib import Path

# Import the registry without running tooltune/__init__.py, whose re-exports pull in
# transformers and mcp: on a shared test machine that halves the worker's start-up time.
_spec = importlib.util.find_spec("tooltune")
_package = types.ModuleType("tooltune")
_package.__path__ = list(_spec.submodule_search_locations)
sys.modules["tooltune"] = _package

import tooltune.registry.db as db  # noqa: E402
from tooltune.tools.catalog import ToolCatalog  # noqa: E402

url, marker, catalog_path = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
add_evaluation = db._add_evaluation


def stall_after_insert(session, model, metrics):
    record = add_evaluation(session, model, metrics)
    session.flush()  # the model, catalog and evaluation rows are now on the server, uncommitted
    marker.write_text(str(model.id))
    time.sleep(120)
    return record


db._add_evaluation = stall_after_insert
registry = db.Registry(url, migrate=False)
registry.register_model(
    "shop-agent", kind="adapter", base_model="tiny-llama", artifact_path="runs/crash",
    catalog=ToolCatalog.load(catalog_path), config={"run": "crash"},
    evaluation={"suite_version": "suite-1", "overall": 0.95, "per_category": {"irrelevance": 0.95}},
)
sys.exit("the worker should have been killed inside the transaction")
