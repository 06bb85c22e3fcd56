"""Registry database URLs, the SQLAlchemy engine, and the packaged Alembic migrations."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from tooltune.errors import ConfigError

URL_ENV = "TOOLTUNE_DB_URL"
DEFAULT_PATH = Path(".tooltune") / "registry.db"
MIGRATIONS = "tooltune.registry:migrations"


def default_url() -> str:
    """``$TOOLTUNE_DB_URL``, else SQLite at ``.tooltune/registry.db`` under the current directory."""
    return os.environ.get(URL_ENV) or f"sqlite:///{(Path.cwd() / DEFAULT_PATH).as_posix()}"


def normalize_url(url: str) -> str:
    """Plain ``postgresql://`` / ``postgres://`` URLs use psycopg 3 (the driver tooltune installs)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def create_registry_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys on, a 30 s busy timeout and write-locking transactions."""
    try:
        parsed = make_url(normalize_url(url))
    except Exception as e:  # sqlalchemy.exc.ArgumentError, ValueError
        raise ConfigError(f"registry URL {url!r} is not a database URL ({e}). "
                          f"Use e.g. sqlite:///.tooltune/registry.db or postgresql://user@host/db in ${URL_ENV}.") from e
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True)
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let the "begin" hook below issue BEGIN
        dbapi_connection.execute("PRAGMA foreign_keys=ON")

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front: "read the latest version, insert the next one"
        # cannot interleave with another process doing the same.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def alembic_config(connection: Any = None, url: str | None = None) -> Config:
    """An Alembic config for the packaged migrations (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS)
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the packaged migrations up to ``revision`` (a no-op when already there)."""
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)
