"""The operating-system walls around the ``code`` service's ``Bash``: what a command can touch,
whatever its arguments say.

The argument checks in :mod:`tooltune.demo.code_sandbox` explain refusals; they are not the
boundary, because allow-listed programs do what their arguments tell them (``python`` runs any
code, ``sort --compress-program`` starts any program, ``grep -R`` follows links). Every command
stage therefore runs under **bubblewrap** (``bwrap``; Debian/Ubuntu package ``bubblewrap``, the
sandbox Flatpak uses), which builds it a fresh root:

- new user, mount, PID, network, IPC and UTS namespaces; no capabilities; ``no_new_privs``;
- inside, only ``/usr`` (and the ``/bin``, ``/lib`` links), the Python installation (the
  server's virtualenv appears as ``/opt/venv``) and the loader's files under ``/etc``, all
  read-only; a private ``/tmp`` (tmpfs), a minimal ``/dev``, the namespace's own ``/proc``; and
  the working copy, read-write, at ``/workspace``. Nothing else of the host exists in there: no
  ``/etc/passwd``, no home folders, no data dir, no real path of the working copy;
- an unprivileged uid: a server running as root runs each command as uid 65534 (``nobody``)
  *outside* the namespace too, after handing it the working copy, so the kernel's process limit
  applies (RLIMIT_NPROC is never enforced for root) and a way out of the namespaces would still
  land as nobody;
- resource limits (util-linux ``prlimit``): CPU seconds, address space, processes, file size,
  open files, no core dumps; the output is read from a size-capped file;
- the namespace dies with the command: anything left running in the background is killed.

A root server's bind sources may lie below folders that uid 65534 cannot enter (a Python under
``/root/.pyenv``, a data dir in a 0700 temp folder). So for root a private mount namespace
(util-linux ``unshare --mount``) first binds them onto empty folders of a world-readable staging
directory, then ``setpriv`` drops to the uid and starts bwrap, which binds from there.

``TOOLTUNE_CODE_SANDBOX=off`` runs commands with the argument checks only (and without network
where ``unshare -rn`` works): for machines without bubblewrap and input you trust.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tooltune.demo.tooling import ToolError

logger = logging.getLogger(__name__)

MODE_VARIABLE = "TOOLTUNE_CODE_SANDBOX"
"""``bwrap`` (default): confine every command; ``off``: argument checks only."""

WORKSPACE = "/workspace"
VENV = "/opt/venv"
SANDBOX_UID = 65534
"""The uid commands run as when the server is root (``nobody`` on Debian and most Linux)."""

_SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/localtime")

# Runs as root in a private mount namespace: bind each source onto its staging folder, then drop
# to the sandbox uid for good and start bwrap. Sources are paths this module computed (absolute
# real paths), passed as arguments, never spliced into the script.
_STAGE_SCRIPT = """set -eu
uid=$1 gid=$2 stage=$3 n=$4
shift 4
i=0
while [ "$i" -lt "$n" ]; do mount --bind "$1" "$stage/$i"; shift; i=$((i + 1)); done
shift
exec setpriv --reuid="$uid" --regid="$gid" --clear-groups --no-new-privs -- "$@"
"""


@dataclass(frozen=True)
class Limits:
    """Per-process resource limits of a confined command (CPU time is the command's timeout)."""

    memory_bytes: int = 2 << 30
    processes: int = 128
    file_bytes: int = 64 << 20
    open_files: int = 256
    tmp_bytes: int = 64 << 20


LIMITS = Limits()


@dataclass(frozen=True)
class _Bind:
    source: str  # real path on the host
    target: str  # path inside the sandbox
    writable: bool = False


class Confinement:
    """Builds the bwrap command line of one command stage over one working copy."""

    def __init__(self, bwrap: str, *, limits: Limits = LIMITS):
        self.bwrap = bwrap
        self.limits = limits
        self.as_root = os.geteuid() == 0
        self.python, self._python_binds = _python_binds()
        self._stage = _staging_dir(len(self._python_binds) + 1) if self.as_root else None

    def prepare(self, workspace: Path) -> None:
        """Before a command: a root server hands the working copy to the sandbox uid."""
        if self.as_root:
            hand_over(workspace, SANDBOX_UID, SANDBOX_UID)

    def command(self, argv: list[str], workspace: Path, cpu_seconds: int) -> list[str]:
        """``argv`` (paths as the sandbox sees them) wrapped in limits, namespaces and binds."""
        binds = [*self._python_binds, _Bind(str(workspace), WORKSPACE, writable=True)]
        limits = ["prlimit", f"--cpu={max(1, cpu_seconds)}", f"--as={self.limits.memory_bytes}",
                  f"--nproc={self.limits.processes}", f"--fsize={self.limits.file_bytes}",
                  f"--nofile={self.limits.open_files}", "--core=0", "--"]
        stage: list[str] = []
        if self._stage is not None:  # root: bind from staging folders the sandbox uid can enter
            stage = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", _STAGE_SCRIPT,
                     "tooltune-sandbox", str(SANDBOX_UID), str(SANDBOX_UID), str(self._stage), str(len(binds)),
                     *(b.source for b in binds), "--"]
            binds = [_Bind(str(self._stage / str(i)), b.target, b.writable) for i, b in enumerate(binds)]
        return [*limits, *stage, *self._bwrap(binds), "--", *argv]

    def _bwrap(self, binds: list[_Bind]) -> list[str]:
        args = [self.bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--hostname", "sandbox",
                "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--ro-bind", "/usr", "/usr"]
        for link in _SYSTEM_LINKS:
            if os.path.islink(link):
                args += ["--symlink", os.readlink(link), link]
            elif os.path.isdir(link):
                args += ["--ro-bind", link, link]
        for path in _ETC:
            args += ["--ro-bind-try", path, path]
        for b in binds:
            args += ["--bind" if b.writable else "--ro-bind", b.source, b.target]
        args += ["--dev", "/dev", "--proc", "/proc", "--size", str(self.limits.tmp_bytes), "--tmpfs", "/tmp",
                 "--remount-ro", "/", "--chdir", WORKSPACE, "--clearenv"]  # the new root itself: read-only
        for name, value in environment().items():
            args += ["--setenv", name, value]
        return args


def environment() -> dict[str, str]:
    """The whole environment of a confined command: nothing of the server's leaks in."""
    return {"PATH": f"{VENV}/bin:/usr/local/bin:/usr/bin:/bin", "HOME": WORKSPACE, "TMPDIR": "/tmp",
            "LANG": "C.UTF-8", "USER": "sandbox", "PYTHONDONTWRITEBYTECODE": "1"}


def hand_over(root: Path, uid: int, gid: int) -> None:
    """Give the working copy to ``uid`` without following links out of it.

    ``os.fwalk`` with directory descriptors: a name is changed relative to its already-open
    folder, so a folder swapped for a link mid-walk cannot redirect the change; links are changed
    themselves (never their targets), and a file with more than one hard link is skipped: its
    other name may be a host file, which must not change hands."""
    _chown(str(root), uid, gid, None)
    for _folder, dirs, files, folder_fd in os.fwalk(root, follow_symlinks=False):
        for name in [*dirs, *files]:
            _chown(name, uid, gid, folder_fd)


def _chown(name: str, uid: int, gid: int, folder_fd: int | None) -> None:
    try:
        st = os.lstat(name, dir_fd=folder_fd)
        if (st.st_uid, st.st_gid) == (uid, gid) or (not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1):
            return
        os.chown(name, uid, gid, dir_fd=folder_fd, follow_symlinks=False)
    except FileNotFoundError:
        pass


def sandbox_python() -> str:
    """The path of the server's Python interpreter as confined commands see it."""
    return _python_binds()[0]


def _python_binds() -> tuple[str, list[_Bind]]:
    """The interpreter's path inside, and the binds that make it work there.

    A virtualenv is mounted at /opt/venv (its real path stays hidden); the installation it was
    made from keeps its own path, because the venv's ``bin/python`` links to it by that path."""
    binds = []
    if sys.prefix != sys.base_prefix:
        binds.append(_Bind(os.path.realpath(sys.prefix), VENV))
        python = f"{VENV}/bin/{Path(sys.executable).name}"
    else:
        python = sys.executable
    base = sys.base_prefix
    if not (base == "/usr" or base.startswith("/usr/")):
        binds.append(_Bind(os.path.realpath(base), base))
    return python, binds


def _staging_dir(count: int) -> Path:
    stage = Path(tempfile.mkdtemp(prefix="tooltune-sandbox-"))
    stage.chmod(0o755)
    for i in range(count):
        (stage / str(i)).mkdir()
    atexit.register(shutil.rmtree, stage, ignore_errors=True)  # empty mount points, bound only inside
    return stage


def mode() -> str:
    value = os.environ.get(MODE_VARIABLE, "bwrap").strip().lower() or "bwrap"
    if value not in ("bwrap", "off"):
        raise ToolError(f"{MODE_VARIABLE}={value!r} is not a sandbox mode; use 'bwrap' (default) or 'off'.")
    return value


def confinement() -> Confinement | None:
    """The confinement commands run under, or ``None`` with ``TOOLTUNE_CODE_SANDBOX=off``.

    Raises ``ToolError`` saying what to install when bubblewrap is missing or cannot start here."""
    if mode() == "off":
        return None
    return _probe(shutil.which("bwrap"), tuple(shutil.which(p) for p in _HELPERS))


_HELPERS = ("prlimit", "unshare", "setpriv")


@functools.cache
def _probe(bwrap: str | None, helpers: tuple[str | None, ...]) -> Confinement:
    off = f"or set {MODE_VARIABLE}=off to run commands with argument checks only (for input you trust)"
    if bwrap is None:
        raise ToolError("Bash confines every command with bubblewrap, which is not installed on this machine; "
                        f"install it (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap), {off}.")
    missing = [name for name, found in zip(_HELPERS, helpers) if found is None]
    if missing:
        raise ToolError(f"Bash needs {', '.join(missing)} from util-linux next to bubblewrap; install util-linux, {off}.")
    confined = Confinement(bwrap)
    with tempfile.TemporaryDirectory() as work:
        confined.prepare(Path(work))
        try:
            done = subprocess.run(confined.command([confined.python, "-c", "pass"], Path(work), 10),
                                  capture_output=True, text=True, timeout=30, cwd=work)
        except subprocess.TimeoutExpired:
            raise ToolError(f"bubblewrap did not start a command within 30 s; {off}.") from None
    if done.returncode != 0:
        # bwrap's own words name host paths: they go to the server's log, not to the model.
        logger.warning("bubblewrap cannot start a command here (exit %s): %s", done.returncode, done.stderr.strip())
        raise ToolError("bubblewrap cannot build the sandbox on this machine (the server log says why); it needs "
                        "user namespaces (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0), "
                        f"{off}.")
    return confined
