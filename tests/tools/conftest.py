"""Shared by the MCP tests of tools/: real MCP servers over HTTP on 127.0.0.1, the anyio backend."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import free_port, stop_process


def wait_for_port(port: int, proc: subprocess.Popen, limit: float = 15.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server did not listen on {port} within {limit} s")


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (free when asked)."""
    return free_port()


@pytest.fixture
def http_server() -> Iterator[Callable[..., int]]:
    """Start ``argv + [port]`` on a free port; yields a starter returning the port."""
    procs: list[subprocess.Popen] = []
    errlog = tempfile.TemporaryFile("w+")  # a file, not a pipe: a chatty server must not block

    def start(*argv: str) -> int:
        port = free_port()
        proc = subprocess.Popen([*argv, str(port)], stdout=subprocess.DEVNULL, stderr=errlog)
        procs.append(proc)
        try:
            wait_for_port(port, proc)
        except RuntimeError as e:
            errlog.seek(0)
            raise RuntimeError(f"{e}; its stderr:\n{errlog.read()[-3000:]}") from None
        return port

    yield start
    for proc in procs:
        stop_process(proc, timeout=5)
    errlog.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
