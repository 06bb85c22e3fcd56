"""The packaged Alembic migrations build the schema from an empty database and match tables.py."""

import importlib.resources

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from tooltune.registry import Registry
from tooltune.registry.engine import alembic_config, create_registry_engine
from tooltune.registry.tables import Base

TABLES = {"catalogs", "datasets", "training_jobs", "models", "evaluations", "comparisons", "gate_decisions",
          "deployments", "service_deployments", "access_audit", "catalog_drift"}


def test_upgrade_from_empty_with_the_alembic_api(empty_registry_url):
    registry_url = empty_registry_url
    cfg = alembic_config(url=registry_url)  # script_location = the package's migrations
    assert cfg.get_main_option("script_location") == "tooltune.registry:migrations"
    command.upgrade(cfg, "head")
    engine = create_registry_engine(registry_url)
    try:
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) == TABLES | {"alembic_version"}
            context = MigrationContext.configure(conn)
            assert context.get_current_revision() == ScriptDirectory.from_config(cfg).get_current_head()
            # No drift between the ORM classes and what the migrations built.
            assert compare_metadata(context, Base.metadata) == []
        command.downgrade(cfg, "base")
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) == {"alembic_version"}
    finally:
        engine.dispose()


def test_opening_a_registry_migrates_and_reopening_is_a_no_op(empty_registry_url):
    Registry(empty_registry_url).close()
    with Registry(empty_registry_url) as registry:
        assert registry.list_models() == []


def test_revision_files_ship_as_package_data():
    versions = importlib.resources.files("tooltune.registry.migrations.versions")
    names = {p.name for p in versions.iterdir()}
    assert "__init__.py" in names  # a package, so setuptools puts it in the wheel
    assert any(n.startswith("0001_") and n.endswith(".py") for n in names)
    assert (importlib.resources.files("tooltune.registry.migrations") / "script.py.mako").is_file()
