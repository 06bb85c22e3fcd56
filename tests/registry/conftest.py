"""Registry fixtures: every registry test runs on SQLite and on a real PostgreSQL server.

PostgreSQL comes from ``$TOOLTUNE_TEST_PG_URL`` (CI: ``scripts/ci-postgres.sh`` prints it) or,
when the Debian binaries are installed, from a throwaway server started here for the session.
Tests start from an empty, migrated registry: a copy of a migrated SQLite file, or the
session's PostgreSQL schema with every table truncated. Migration tests get an untouched
database or schema of their own (``empty_registry_url``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from tooltune.registry.engine import normalize_url

from tests.conftest import free_port

PG_ENV = "TOOLTUNE_TEST_PG_URL"
SKIP = f"PostgreSQL tests skipped: no server (install postgresql or set {PG_ENV})"


def _start_postgres() -> tuple[str, Callable[[], None]] | str:
    """Start a throwaway server; returns (admin URL, stop) or the reason it could not."""
    initdbs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not initdbs:
        return "no /usr/lib/postgresql/*/bin/initdb"
    bindir = Path(initdbs[-1]).parent
    # initdb refuses to run as root: run the server as the postgres user in a directory it owns
    # (pytest's tmp dirs are private to root, so use a fresh one under /tmp).
    prefix: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="tooltune-pg-"))
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(base)
            return "running as root and there is no 'postgres' user to run the server as"
        shutil.chown(base, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    data, log = base / "data", base / "server.log"
    try:
        subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "tooltune", "-A", "trust",
                        "--no-sync", "-E", "UTF8"], check=True, capture_output=True, timeout=120)
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o",
                        f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
                        "start"], check=True, capture_output=True, timeout=120)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
        detail = getattr(e, "stderr", b"") or b""
        if log.exists():
            detail += log.read_bytes()[-2000:]
        shutil.rmtree(base, ignore_errors=True)
        return f"could not start a throwaway server: {e}: {detail.decode(errors='replace').strip()}"

    def stop() -> None:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)

    return f"postgresql+psycopg://tooltune@127.0.0.1:{port}/postgres", stop


@pytest.fixture(scope="session")
def pg_admin_url():
    """Admin URL of a PostgreSQL server, or a skip reason string when there is none."""
    if os.environ.get(PG_ENV):
        yield normalize_url(os.environ[PG_ENV])
        return
    started = _start_postgres()
    if isinstance(started, str):
        yield f"{SKIP}; {started}"
        return
    url, stop = started
    try:
        yield url
    finally:
        stop()


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _pg_admin(request) -> str:
    admin = request.getfixturevalue("pg_admin_url")
    if admin.startswith(SKIP):
        pytest.skip(admin)
    return admin


@contextmanager
def _pg_schema(admin: str) -> Iterator[str]:
    """A new schema on the server, as a URL whose search_path points at it; dropped on exit."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(admin, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield make_url(admin).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def empty_registry_url(request, tmp_path):
    """A database nothing has touched: a new SQLite file, or a new schema on the PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    with _pg_schema(_pg_admin(request)) as url:
        yield url


@pytest.fixture(scope="session")
def _migrated_sqlite(tmp_path_factory) -> Path:
    from tooltune.registry import Registry

    path = tmp_path_factory.mktemp("template") / "registry.db"
    Registry(f"sqlite:///{path}").close()
    return path


@pytest.fixture(scope="session")
def _migrated_pg_schema(request):
    from tooltune.registry import Registry

    with _pg_schema(_pg_admin(request)) as url:
        Registry(url).close()
        yield url


@pytest.fixture(params=BACKENDS)
def registry_url(request, tmp_path):
    """A migrated, empty registry database: a copy of a migrated SQLite file, or the session's
    PostgreSQL schema with every table truncated (migrating afresh per test is the slow part)."""
    if request.param == "sqlite":
        path = tmp_path / "registry.db"
        shutil.copyfile(request.getfixturevalue("_migrated_sqlite"), path)
        return f"sqlite:///{path}"
    from tooltune.registry.tables import Base

    url = request.getfixturevalue("_migrated_pg_schema")
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def registry(registry_url):
    from tooltune.registry import Registry

    reg = Registry(registry_url)
    yield reg
    reg.close()


@pytest.fixture(scope="session")
def catalogs(shop_catalog_dict):
    """v1: the shop catalog; v2: plus a tool (minor); v3: a parameter removed (breaking); v1b: a description reworded (patch)."""
    from tooltune.tools.catalog import ToolCatalog

    v1 = ToolCatalog.from_dict(shop_catalog_dict)
    v2 = ToolCatalog.from_dict({"tools": [*shop_catalog_dict["tools"], {"name": "refund", "description": "Refund a payment."}]})
    tools3 = [dict(t) for t in v2.to_dict()["tools"]]
    params = {**tools3[0]["parameters"], "properties": dict(tools3[0]["parameters"]["properties"])}
    del params["properties"]["customer_id"]
    params["required"] = [r for r in params["required"] if r != "customer_id"]
    tools3[0] = {**tools3[0], "parameters": params}
    v3 = ToolCatalog.from_dict({"tools": tools3})
    v1b = ToolCatalog.from_dict({"tools": [{**shop_catalog_dict["tools"][0], "description": "Charge a customer (cents)."},
                                           *shop_catalog_dict["tools"][1:]]})
    return {"v1": v1, "v2": v2, "v3": v3, "v1b": v1b}


def _metrics(overall: float = 0.9, suite: str = "suite-1", **overrides) -> dict:
    data = {
        "suite_version": suite, "split": "all", "overall": overall, "examples": 200,
        "per_category": {"simple": overall, "parallel": overall, "irrelevance": 0.95},
        "per_tool": {"create_payment": 0.99, "get_orders": overall},
        "per_split": {"test_phrasing": overall, "test_zero_shot": 0.7},
    }
    data.update(overrides)
    return data


@pytest.fixture(scope="session")
def metrics():
    """``metrics(overall, suite, **sections)`` → a metrics.json-shaped dict; overrides replace whole sections."""
    return _metrics


@pytest.fixture
def register(registry, catalogs):
    """``register(catalog="v1", config={...}, evaluation=metrics(...))`` → ModelRecord under name 'shop-agent'."""

    def make(catalog: str = "v1", *, name: str = "shop-agent", config: dict | None = None, evaluation=None, **kw):
        return registry.register_model(
            name, kind=kw.pop("kind", "adapter"), base_model=kw.pop("base_model", "tiny-llama"),
            artifact_path=kw.pop("artifact_path", f"runs/{catalog}"), catalog=catalogs[catalog],
            config=config if config is not None else {"learning_rate": 1e-4, "lora": {"r": 16}}, evaluation=evaluation, **kw)

    return make
