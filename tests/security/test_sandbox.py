"""The ``code`` service's sandbox, attacked: argument forms that smuggle paths past the checks,
code that ignores the checks altogether (``python`` is allow-listed), links out, resource
exhaustion, regex bombs, and host paths in what the tools return.

The argument layer must *explain* refusals; the OS layer (bubblewrap) must *hold* when the
argument layer is bypassed: each escape below is tried through ``python``, which the checks
cannot read, and the host is inspected afterwards."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tooltune.demo import code_sandbox
from tooltune.demo.code_confine import SANDBOX_UID, hand_over
from tooltune.demo.code_sandbox import Sandbox
from tooltune.demo.tooling import ToolError

SECRET = "TOP-SECRET-CONTENT"


def py(code: str) -> str:
    """A Bash command line running ``code`` with the sandbox's python (double quotes inside only)."""
    assert "'" not in code
    return f"python -c '{code}'"


def refused(box: Sandbox, command: str) -> str:
    with pytest.raises(ToolError) as caught:
        box.run(command, 10)
    return str(caught.value)


# -- first line: the argument checks explain, for every way of spelling a path -----------------


@pytest.mark.parametrize("command", [
    "sort -o{out} README.md",             # value glued to a short flag
    "sort -o {out} README.md",            # separate word
    "sort --output={out} README.md",      # --long=value
    "sort -o={out} README.md",            # -x=value
    "grep -f{secret} README.md",          # read a pattern file outside
    "grep -rf{secret} .",                 # glued after a flag cluster
    "grep --file={secret} README.md",
    "diff --to-file={secret} README.md",
    "sort -o../../evil.txt README.md",    # glued '..'
    "cat ../../secret.txt",
    "find . -fprint {out}",
    "sort -T{parent} README.md",          # a temp directory outside
    "cat ~/x",
])
def test_path_arguments_are_refused_in_every_spelling(box: Sandbox, work: Path, command: str) -> None:
    out, secret = work.parent.parent / "evil.txt", work.parent.parent / "secret.txt"
    message = refused(box, command.format(out=out, secret=secret, parent=work.parent))
    assert any(s in message for s in ("outside the sandbox", "glues a path to a flag", "'~' is not available"))
    assert not out.exists()
    assert str(work) not in message, "refusals never show the working copy's real path"


def test_a_refusal_quotes_the_path_as_given_not_the_real_one(box: Sandbox, work: Path) -> None:
    os.symlink(work.parent.parent / "secret.txt", work / "leak.txt")
    message = refused(box, "cat /workspace/leak.txt")
    assert "'/workspace/leak.txt'" in message and str(work) not in message


# -- the OS layer: code the checks cannot read ---------------------------------------------------


def test_writes_outside_the_working_copy_fail(box: Sandbox, work: Path, tmp_path: Path) -> None:
    targets = [tmp_path / "written-from-sandbox.txt", work.parent / "beside.txt", Path("/etc/tooltune-escape"),
               Path("/usr/tooltune-escape"), Path("/escape"), Path(os.path.realpath(os.__file__)).with_name("escape.py")]
    for target in targets:
        code, _, err = box.run(py(f'open("{target}", "w").write("x")'), 20)
        assert code == 1 and ("Read-only file system" in err or "No such file or directory" in err), (target, err)
        assert not target.exists(), target
    # The sandbox's own /tmp works and is private: nothing appears in the host's /tmp.
    assert box.run(py('open("/tmp/tooltune-escape.txt", "w").write("x")'), 20)[0] == 0
    assert not Path("/tmp/tooltune-escape.txt").exists()
    code, out, _ = box.run(py('open("/tmp/scratch", "w").write("x"); print(open("/tmp/scratch").read())'), 20)
    assert (code, out) == (0, "x\n") and not Path("/tmp/scratch").exists()


def test_host_files_cannot_be_read(box: Sandbox, work: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLTUNE_TEST_TOKEN", SECRET)
    # Whatever the host has in its home folder, except the Python installation the sandbox runs.
    home = [p for p in Path.home().iterdir() if not sys.base_prefix.startswith(str(p))][:5]
    probes = [tmp_path / "secret.txt", tmp_path, work.parent, Path("/etc/passwd"), Path("/etc/hostname"), *home]
    assert all(p.exists() for p in probes[:4])
    code, out, err = box.run(py(f'import os; print([p for p in {json.dumps([str(p) for p in probes])} if os.path.exists(p)])'), 20)
    assert (code, out) == (0, "[]\n"), err
    # /proc is the namespace's own: its pid 1 is bubblewrap's init, whose environment is not the server's.
    code, out, err = box.run(py('print(open("/proc/1/environ").read())'), 20)
    assert code == 0 and SECRET not in out and "TOOLTUNE_TEST_TOKEN" not in out


def test_links_out_lead_nowhere(box: Sandbox, work: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    os.symlink(secret, work / "leak.txt")
    os.symlink(tmp_path, work / "up")
    # The links exist before the command: the argument checks refuse what they can see...
    assert "leads outside the sandbox" in refused(box, "cat leak.txt")
    # ...and what they cannot see (recursion, -L, links made by the command itself) finds nothing.
    for command in ["grep -R TOP-SECRET .", "grep -r --dereference-recursive TOP-SECRET .", "find -L . -name secret.txt",
                    "ls -L up", py(f'import os; os.symlink("{secret}", "made.txt"); print(open("made.txt").read())'),
                    py(f'import os; os.symlink("{tmp_path}", "dir"); print(os.listdir("dir"))')]:
        try:
            code, out, err = box.run(command, 20)
        except ToolError as e:  # refused up front: fine too
            out, err = "", str(e)
        assert SECRET not in out + err and "secret.txt" not in out, (command, out, err)


def test_commands_run_as_an_unprivileged_user(box: Sandbox, work: Path) -> None:
    code, out, _ = box.run(py('import os; open("made.txt", "w").write("x"); print(os.getuid(), os.getgid())'), 20)
    assert (code, out) == (0, f"{SANDBOX_UID} {SANDBOX_UID}\n")
    if os.geteuid() == 0:  # a root server: the command is nobody on the host too, not root
        assert (work / "made.txt").stat().st_uid == SANDBOX_UID
    code, out, _ = box.run(py('print(open("/proc/self/status").read())'), 20)
    effective = next(line for line in out.splitlines() if line.startswith("CapEff:"))
    assert effective.split()[1] == "0" * 16, "no capabilities"


def test_no_network_not_even_the_hosts_loopback(box: Sandbox) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        code, _, err = box.run(py(f'import socket; socket.create_connection(("127.0.0.1", {port}), timeout=2)'), 20)
        assert code == 1 and "Connection refused" in err  # the namespace's own loopback, not the host's
    code, _, err = box.run(py('import socket; socket.create_connection(("192.0.2.1", 80), timeout=2)'), 20)
    assert code == 1 and "Network is unreachable" in err


def test_the_servers_environment_does_not_leak(box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLTUNE_TEST_TOKEN", SECRET)
    code, out, _ = box.run(py('import os; print(sorted(os.environ))'), 20)
    assert code == 0 and SECRET not in out and "TOOLTUNE_TEST_TOKEN" not in out
    assert eval(out) == ["HOME", "LANG", "PATH", "PWD", "PYTHONDONTWRITEBYTECODE", "TMPDIR", "USER"]  # noqa: S307


def test_processes_memory_and_output_are_limited(box: Sandbox) -> None:
    fork = ('import os, time\nn = 0\ntry:\n    while n < 1000:\n        if os.fork() == 0:\n            time.sleep(3); os._exit(0)\n'
            '        n += 1\nexcept OSError:\n    pass\nprint(n)')
    code, out, err = box.run(f'python -c "{fork}"', 30)
    assert code == 0 and int(out) < 200, "the process limit stops a fork bomb"
    code, out, err = box.run(py('x = bytearray(3 << 30)'), 20)
    assert code == 1 and "MemoryError" in err
    code, out, _ = box.run(py('import sys\nfor _ in range(100000): sys.stdout.write("y" * 1000)'), 30)
    assert len(out) < code_sandbox.MAX_OUTPUT_CHARS + 200 and "cut" in out


def test_background_processes_die_with_the_command(box: Sandbox, work: Path) -> None:
    code, _, _ = box.run(py('import os, time\nif os.fork() == 0:\n    time.sleep(1); open("late.txt", "w").write("x")'), 20)
    assert code == 0
    time.sleep(2)
    assert not (work / "late.txt").exists()


def test_cpu_time_and_wall_time_are_limited(box: Sandbox) -> None:
    started = time.monotonic()
    assert "timed out after 1 s" in refused_with_timeout(box, py("while True: pass"), 1)
    assert time.monotonic() - started < 10


def refused_with_timeout(box: Sandbox, command: str, timeout: int) -> str:
    with pytest.raises(ToolError) as caught:
        box.run(command, timeout)
    return str(caught.value)


def test_host_paths_never_appear_in_output(box: Sandbox, work: Path) -> None:
    code, out, err = box.run(py('import os; print(os.getcwd()); open("/nope/x")'), 20)
    assert out == "/workspace\n" and str(work) not in err and str(work.parent) not in out + err


# -- handing the working copy to the sandbox uid --------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="handing files over needs root")
def test_hand_over_never_follows_links_or_hard_links(tmp_path: Path) -> None:
    host = tmp_path / "host.txt"
    host.write_text("host")
    copy = tmp_path / "copy"
    copy.mkdir()
    os.symlink(host, copy / "soft")
    os.link(host, copy / "hard")
    (copy / "own.txt").write_text("x")
    hand_over(copy, SANDBOX_UID, SANDBOX_UID)
    assert host.stat().st_uid == 0, "neither the symbolic nor the hard link changed the host file's owner"
    assert (copy / "own.txt").stat().st_uid == SANDBOX_UID and os.lstat(copy / "soft").st_uid == SANDBOX_UID


# -- regex and glob bombs: Grep and Glob stop in bounded time ----------------------------------


@pytest.mark.parametrize("pattern", [r"(x+x+)+y", r"(a|aa)+$", r"(.*a){25}", r"^(\w+\s?)*$"])
def test_regex_bombs_stop_with_a_clear_error(work: Path, monkeypatch: pytest.MonkeyPatch, pattern: str) -> None:
    from tooltune.demo.code_service import CodeTools

    monkeypatch.setattr(code_sandbox, "SEARCH_SECONDS", 0.3)
    (work / "bomb.txt").write_text(("x" * 3000 + "\n") + ("a" * 3000 + "!\n") + ("word " * 2000 + "!\n"))
    tools = CodeTools(Sandbox(work))
    started = time.monotonic()
    try:
        tools.Grep(pattern=pattern, path="/workspace/bomb.txt")
    except ToolError as e:
        assert "took longer than 0.3 s" in str(e)
    assert time.monotonic() - started < 15  # unbounded, these run for hours; the slack is for a loaded CI box


def test_glob_bombs_stop(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tooltune.demo.code_service import CodeTools

    monkeypatch.setattr(code_sandbox, "SEARCH_SECONDS", 0.3)
    deep = work / "/".join(["a"] * 40)
    deep.mkdir(parents=True)
    (deep / ("a" * 100)).write_text("x")
    tools = CodeTools(Sandbox(work))
    started = time.monotonic()
    for pattern in ["**/" * 30 + "b", "*a*a*a*a*a*a*a*a*a*a*a*a*b"]:
        try:
            assert tools.Glob(pattern=pattern).files == []
        except ToolError as e:
            assert "took longer" in str(e)
    assert time.monotonic() - started < 15


def test_invalid_and_oversized_patterns_are_refused(work: Path) -> None:
    from tooltune.demo.code_service import CodeTools

    tools = CodeTools(Sandbox(work))
    with pytest.raises(ToolError, match="escape special characters"):
        tools.Grep(pattern="Money(")
    with pytest.raises(ToolError, match="at most 2000"):
        tools.Grep(pattern="a" * 3000)


# -- without bubblewrap: a refusal that says what to install ----------------------------------


def test_missing_bubblewrap_is_explained(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    message = refused(Sandbox(work), "ls")
    assert "apt-get install bubblewrap" in message and "TOOLTUNE_CODE_SANDBOX=off" in message
    monkeypatch.setenv("TOOLTUNE_CODE_SANDBOX", "maybe")
    assert "not a sandbox mode" in refused(Sandbox(work), "ls")


def test_argument_checks_come_first_even_without_bubblewrap(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert "glues a path" in refused(Sandbox(work), "sort -o/etc/x README.md")


def test_bwrap_is_on_path_for_ci() -> None:
    if os.environ.get("TOOLTUNE_REQUIRE_SANDBOX") == "1":
        assert subprocess.run(["bwrap", "--version"], capture_output=True).returncode == 0
