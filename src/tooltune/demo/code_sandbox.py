"""The ``code`` service's sandbox: a working copy on disk that tools cannot leave.

The model sees the working copy as ``/workspace`` (:data:`ROOT`), whatever directory it really
lives in, so training data and chain results carry the same paths on every machine. Every path
a tool takes is checked here before anything touches the disk:

- it must be absolute and start with ``/workspace`` (the real directory is accepted too);
  a relative path is refused with the absolute form to use, since guessing a base directory is
  how agents edit the wrong file;
- ``..`` components are refused outright;
- after following symbolic links it must still lie inside the working copy.

Commands (:meth:`Sandbox.run`) are not given to a shell. The line is split with :mod:`shlex`
into stages joined by ``|`` and steps joined by ``&&``; every other shell operator is refused.
Each stage's program must be on the allow-list, every argument that names a path passes the same
confinement check, a flag with a path glued to it (``-o/etc/x``) is refused (write the path as
its own word so it is checked), and unquoted globs are expanded inside the working copy.

Those checks explain refusals; they are not the boundary. Allow-listed programs do what their
arguments say (``python`` runs any code), so every stage runs confined by the operating system
(:mod:`tooltune.demo.code_confine`: bubblewrap namespaces where only the working copy is
writable and the rest of the host is absent or read-only, an unprivileged uid, resource limits).
Output is read from a size-capped file and cut to :data:`MAX_OUTPUT_CHARS`; the real path of the
working copy never appears in what tools return.
"""

from __future__ import annotations

import fnmatch
import functools
import glob as globbing
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

import regex

from tooltune.demo.code_confine import WORKSPACE, Confinement, confinement, mode, sandbox_python
from tooltune.demo.tooling import ToolError

ROOT = PurePosixPath("/workspace")
"""The working copy's path as tools show and take it."""

DEFAULT_COMMANDS = frozenset({
    "cat", "cut", "diff", "echo", "false", "find", "grep", "head", "ls", "pwd", "pytest", "python",
    "python3", "sed", "sort", "tail", "tr", "true", "uniq", "wc",
})
"""Programs ``Bash`` may start by default; ``TOOLTUNE_CODE_COMMANDS`` (comma-separated) replaces it."""

MAX_OUTPUT_CHARS = 30_000
_READ_BYTES = 4 * MAX_OUTPUT_CHARS  # UTF-8 needs at most 4 bytes a character
_OPERATORS = {"|", "&&"}
_FIND_EXEC = {"-exec", "-execdir", "-ok", "-okdir"}
_GLOB_CHARS = re.compile(r"[*?\[]")


class Sandbox:
    """Path confinement and command execution over one working-copy directory."""

    def __init__(self, root: Path, *, commands: Iterable[str] = DEFAULT_COMMANDS):
        self.root = Path(os.path.realpath(root))
        self.commands = frozenset(commands)
        self.lock = threading.RLock()
        """Held by every tool call and command: no command runs while a path is checked and then
        used (a command could swap a folder for a link in between) or while the copy is handed over."""

    # ------------------------------------------------------------ paths

    def resolve(self, path: str, param: str = "file_path") -> Path:
        """The real path for a tool's path argument; raises ``ToolError`` saying what to pass instead."""
        if not path:
            raise ToolError(f"{param} is empty; give an absolute path such as '{ROOT}/README.md'.")
        if not path.startswith("/"):
            hint = ROOT / path.lstrip("./~") if ".." not in PurePosixPath(path).parts else ROOT
            raise ToolError(f"{param} {path!r} is a relative path; give the absolute path, e.g. '{hint}'.")
        parts = PurePosixPath(path).parts
        if ".." in parts:
            raise ToolError(f"{param} {path!r}: '..' is not allowed; paths stay inside {ROOT}.")
        relative = self._relative(PurePosixPath(path))
        if relative is None:
            raise ToolError(f"{param} {path!r} is outside the sandbox; every path starts with {ROOT} (the project root).")
        real = Path(os.path.realpath(self.root / relative))
        if not self.contains(real):
            raise ToolError(f"{param} {path!r} leads through a symbolic link to a place outside the sandbox; refused.")
        return real

    def show(self, real: Path) -> str:
        """How tools print a real path inside the working copy: ``/workspace/...``."""
        relative = Path(real).relative_to(self.root)
        return str(ROOT / relative) if relative.parts else str(ROOT)

    def contains(self, real: Path) -> bool:
        real = Path(real)
        return real == self.root or self.root in real.parents

    def inside(self, path: Path) -> bool:
        """Whether ``path`` (possibly a symbolic link) resolves inside the working copy."""
        return self.contains(Path(os.path.realpath(path)))

    def _relative(self, path: PurePosixPath) -> PurePosixPath | None:
        for base in (ROOT, PurePosixPath(self.root)):
            if path == base or base in path.parents:
                return path.relative_to(base)
        return None

    # ------------------------------------------------------------ commands

    def run(self, command: str, timeout: float) -> tuple[int, str, str]:
        """Run a command line in the working copy; returns (exit code, stdout, stderr).

        Raises ``ToolError`` for a refused command or one that outlives ``timeout`` seconds."""
        inside = mode() == "bwrap"
        steps = [[self._argv(stage, command, inside) for stage in step] for step in _parse(command)]
        confined = confinement() if inside else None  # after the checks: a refusal explains itself first
        with self.lock:
            if confined is not None:
                confined.prepare(self.root)
            deadline = time.monotonic() + timeout
            code, out, err = 0, [], []
            for step in steps:
                code, stdout, stderr = self._pipeline(step, deadline, command, timeout, confined)
                out.append(stdout)
                err.append(stderr)
                if code != 0:
                    break
        return code, self._clean("".join(out)), self._clean("".join(err))

    def network_isolated(self) -> bool:
        """Whether commands run without network: always when confined."""
        try:
            return confinement() is not None or network_isolation()
        except ToolError:
            return network_isolation()

    def _argv(self, stage: list[str], command: str, inside: bool) -> tuple[str, list[str]]:
        program, args = stage[0], stage[1:]
        if "/" in program or program not in self.commands:
            allowed = ", ".join(sorted(self.commands))
            raise ToolError(f"command {program!r} is not allowed in this sandbox; allowed programs: {allowed}. "
                            "Use Read, Write, Edit, Grep and Glob for files.")
        if program == "find" and _FIND_EXEC & set(args):
            raise ToolError("find -exec/-ok is not allowed (it would start programs outside the allow-list); "
                            "pipe the file names to an allowed program instead, or use Grep.")
        python = sandbox_python() if inside else sys.executable
        argv = [python, "-m", "pytest"] if program == "pytest" else (
            [python] if program in ("python", "python3") else [program])
        if program == "sed":
            argv.append("--sandbox")  # GNU sed's e/r/w commands would run programs and write anywhere
        for arg in args:
            argv.extend(self._argument(arg, command, inside=inside))
        return program, argv

    def _argument(self, arg: str, command: str, *, inside: bool) -> list[str]:
        """``arg`` as the program gets it: paths checked, globs expanded, ``/workspace`` mapped to
        where the working copy is for the process (itself when confined, the real folder if not)."""
        key, eq, value = arg.partition("=") if arg.startswith("-") else ("", "", arg)
        if arg.startswith("-") and not eq:
            if "/" in arg or ".." in arg:
                # Which letters of '-o/x' take a value is each program's secret; a path glued to a
                # flag would skip the check below, so every such word is refused, not just known flags.
                raise ToolError(f"argument {arg!r} glues a path to a flag; write the flag and the path as two words "
                                f"(e.g. '-o {ROOT}/out.txt') or as --option=path, so the path can be checked.")
            return [arg]
        host = self._host(value)
        self._check_argument(value, host)
        if not eq and _GLOB_CHARS.search(value) and _unquoted(arg, command):
            found = sorted(globbing.glob(host, root_dir=self.root))
            if found:
                for match in found:
                    self._check_argument(self._outward(match, inside=True), match)
                return [self._outward(match, inside=inside) for match in found]
        value = self._outward(host, inside=inside)
        return [f"{key}={value}"] if eq else [value]

    def _host(self, value: str) -> str:
        if value.startswith(str(ROOT)) and (value == str(ROOT) or value[len(str(ROOT))] == "/"):
            return str(self.root) + value[len(str(ROOT)):]
        return value

    def _outward(self, host: str, *, inside: bool) -> str:
        real = str(self.root)
        if inside and host.startswith(real) and (host == real or host[len(real)] == "/"):
            return WORKSPACE + host[len(real):]
        return host

    def _check_argument(self, shown: str, value: str) -> None:
        """Refuse ``value`` (the host form) when it leads out; messages quote ``shown``, never a real path."""
        if not value or value.startswith("-"):
            return
        if value.startswith("~"):
            raise ToolError(f"argument {shown!r}: '~' is not available; paths stay inside {ROOT}.")
        if value.startswith("/") and not self.contains(Path(os.path.realpath(value))):
            raise ToolError(f"argument {shown!r} is outside the sandbox; every path starts with {ROOT}.")
        if not value.startswith("/") and not self.inside(self.root / value):
            raise ToolError(f"argument {shown!r} leads outside the sandbox ('..' or a symbolic link); refused.")

    def _pipeline(self, stages: list[tuple[str, list[str]]], deadline: float, command: str, timeout: float,
                  confined: Confinement | None) -> tuple[int, str, str]:
        procs: list[subprocess.Popen] = []
        cpu = int(timeout) + 1
        with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
            try:
                for i, (_, argv) in enumerate(stages):
                    if confined is not None:
                        full, cwd, env = confined.command(argv, self.root, cpu), "/", _HOST_ENV
                    else:
                        full = (["unshare", "-rn"] if network_isolation() else []) + argv
                        cwd, env = self.root, _environment(self.root)
                    procs.append(subprocess.Popen(
                        full, cwd=cwd, env=env, stderr=stderr,
                        stdin=procs[-1].stdout if procs else subprocess.DEVNULL,
                        # The last stage writes to a file: a command cannot fill the server's memory.
                        stdout=stdout if i == len(stages) - 1 else subprocess.PIPE,
                        # One process group (same session: setpgid across sessions fails), killed as one on timeout.
                        process_group=procs[0].pid if procs else 0,
                    ))
                for p in procs[:-1]:
                    p.stdout.close()  # type: ignore[union-attr]  # the next stage owns it now
                for p in procs:
                    p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except FileNotFoundError as e:
                _kill(procs)
                raise ToolError(f"command {stages[len(procs)][0]!r} is allowed but not installed on this machine.") from e
            except subprocess.TimeoutExpired:
                _kill(procs)
                raise ToolError(f"command timed out after {timeout:g} s and was stopped: {command!r}. "
                                "Pass a larger timeout (at most 120 s) or run something shorter.") from None
            out, err = _read_capped(stdout), _read_capped(stderr)
        return procs[-1].returncode, out, err

    def hide_paths(self, text: str) -> str:
        """``text`` with the working copy's real path written as ``/workspace``."""
        return text.replace(str(self.root), str(ROOT))

    def _clean(self, text: str) -> str:
        text = self.hide_paths(text)
        if len(text) > MAX_OUTPUT_CHARS:
            return text[:MAX_OUTPUT_CHARS] + f"\n... [{len(text) - MAX_OUTPUT_CHARS} more characters cut]"
        return text


_HOST_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
"""The environment of the helpers that build the sandbox (bwrap clears it for the command)."""


def _read_capped(file) -> str:
    size = os.fstat(file.fileno()).st_size
    file.seek(0)
    text = file.read(_READ_BYTES).decode("utf-8", "replace")
    if size > _READ_BYTES:
        text += f"\n... [output cut: the command wrote {size} bytes]"
    return text


def _parse(command: str) -> list[list[list[str]]]:
    """``a | b && c`` → steps of pipeline stages of words: [[[a], [b]], [[c]]]."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError as e:
        raise ToolError(f"command cannot be split into words ({e}); check the quotes.") from None
    if not tokens:
        raise ToolError("command is empty; give a command line such as 'python -m pytest -q'.")
    steps: list[list[list[str]]] = [[[]]]
    for token in tokens:
        if token and set(token) <= set("();<>|&") and token not in _OPERATORS:
            raise ToolError(f"shell operator {token!r} is not allowed; run one command (pipes '|' and '&&' work) "
                            "and use Write or Edit to change files.")
        if token == "&&":
            steps.append([[]])
        elif token == "|":
            steps[-1].append([])
        else:
            steps[-1][-1].append(token)
    if any(not stage for step in steps for stage in step):
        raise ToolError(f"command {command!r} has an empty part around '|' or '&&'.")
    return steps


def _unquoted(arg: str, command: str) -> bool:
    # shlex drops the quotes; a glob the user quoted is meant literally (find -name '*.py').
    return re.search(rf"(?:^|[\s|&]){re.escape(arg)}(?:$|[\s|&])", command) is not None


def _environment(root: Path) -> dict[str, str]:
    # Nothing from the server's environment: no proxies, tokens or virtualenv state leak in.
    return {"PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
            "HOME": str(root), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "TMPDIR": str(root)}


def _kill(procs: list[subprocess.Popen]) -> None:
    if procs:
        try:
            os.killpg(procs[0].pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for p in procs:
        p.wait()
        if p.stdout:
            p.stdout.close()


@functools.cache
def network_isolation() -> bool:
    """Whether ``unshare -rn`` works here (it needs unprivileged user namespaces)."""
    if shutil.which("unshare") is None:
        return False
    try:
        return subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


SEARCH_SECONDS = 5.0
"""How long all the matching of one Grep or Glob call may take."""
MAX_PATTERN_CHARS = 2000


class TimedPattern:
    """A compiled :mod:`regex` pattern whose matches together get :data:`SEARCH_SECONDS`.

    Python's ``re`` cannot be stopped: ``(x+x+)+y`` over a line of x's backtracks for hours. The
    ``regex`` module (Python's syntax) takes a timeout on every call, so a pathological pattern
    ends in a ToolError that says what happened instead of holding the server."""

    def __init__(self, compiled: regex.Pattern[str], what: str):
        self.compiled, self.what = compiled, what
        self.deadline = time.monotonic() + SEARCH_SECONDS

    def search(self, text: str) -> regex.Match[str] | None:
        return self._call(self.compiled.search, text)

    def match(self, text: str) -> regex.Match[str] | None:
        return self._call(self.compiled.match, text)

    def _call(self, method, text: str):
        try:
            return method(text, timeout=max(0.001, self.deadline - time.monotonic()))
        except TimeoutError:
            raise ToolError(f"{self.what} took longer than {SEARCH_SECONDS:g} s and was stopped; nested repetition "
                            "such as '(a+)+' can take exponential time. Simplify it, or search fewer files "
                            "(path, glob).") from None


def search_pattern(pattern: str) -> TimedPattern:
    """Grep's pattern compiled with a time budget; a ToolError shows the literal form when it is invalid."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ToolError(f"pattern is {len(pattern)} characters long; at most {MAX_PATTERN_CHARS} are allowed.")
    try:
        compiled = regex.compile(pattern)
    except (regex.error, ValueError, OverflowError) as e:
        escaped = regex.escape(pattern)
        raise ToolError(f"pattern {pattern!r} is not a valid regular expression ({e}); to search for the text "
                        f"literally, escape special characters: {escaped!r}.") from None
    return TimedPattern(compiled, f"pattern {pattern!r}")


def glob_regex(pattern: str) -> regex.Pattern[str]:
    """A ``/``-aware glob (``**/`` spans folders, ``*`` does not) as a regex over relative paths."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            if out[-1:] != ["(?:.*/)?"]:  # '**/**/' means '**/'; stacked '.*' groups backtrack polynomially
                out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(regex.escape(pattern[i]))
            i += 1
    return regex.compile("".join(out) + r"\Z")


def name_matches(relative: str, pattern: str) -> bool:
    """Grep's ``glob`` filter: a pattern without ``/`` matches the file name, else the relative path."""
    if "/" not in pattern:
        return fnmatch.fnmatchcase(PurePosixPath(relative).name, pattern)
    return glob_regex(pattern).match(relative) is not None
