"""The ``code`` demo service: a coding agent's tools over a sandboxed Python project.

``Read``, ``Write``, ``Edit``, ``Bash``, ``Grep`` and ``Glob`` work on a real working copy on
disk: ``data_dir/code/``, copied from the small project the package ships
(``code_project/``, a library called ``ledger`` with tests) the first time, and restored by
``reset``. The model sees it as ``/workspace``; :mod:`tooltune.demo.code_sandbox` keeps every
path and command inside it.

Quirks a model has to get right:

- **Paths are absolute** and start with ``/workspace``: ``/workspace/src/ledger/money.py``,
  not ``src/ledger/money.py``. ``..``, other absolute paths and links out are refused.
- **Edit needs a unique old_string**: text that occurs twice is refused (with its lines) unless
  ``replace_all`` is set; include surrounding lines to pick one.
- **Grep takes a regular expression**: ``Money(`` must be written ``Money\\(``.
- **Glob patterns are relative** to ``path``: ``pattern='**/*.py', path='/workspace/src'``.
- **Bash runs one allow-listed program** (pipes and ``&&`` work) in the project root, with a
  timeout in seconds and no network.
"""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path
from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel, Field

from tooltune.demo.code_sandbox import DEFAULT_COMMANDS, ROOT, Sandbox, TimedPattern, glob_regex, name_matches, search_pattern
from tooltune.demo.tooling import DESTRUCTIVE, IDEMPOTENT_WRITE, READ_ONLY, ToolError, register, tool

PROJECT = Path(__file__).with_name("code_project")
"""The project every working copy starts from."""

MAX_FILE_CHARS = 200_000
MAX_READ_LINES = 2000
MAX_RESULTS = 200
_SKIP_DIRS = {"__pycache__", ".git", ".pytest_cache"}

INSTRUCTIONS = (
    f"A Python project (the 'ledger' library) in {ROOT}. Paths are absolute, e.g. '{ROOT}/src/ledger/money.py'. "
    "Find files with Glob or Grep, Read before you Edit; Bash runs allow-listed commands in the project root."
)

FilePath = Annotated[str, Field(description=f"Absolute path, starting with {ROOT}, e.g. '{ROOT}/src/ledger/money.py'.")]


class ReadResult(BaseModel):
    file_path: str
    content: str = Field(description="The lines read, without line numbers.")
    start_line: int = Field(description="1-based number of the first line returned.")
    num_lines: int
    total_lines: int
    truncated: bool = Field(description="True when the file has lines after the ones returned.")


class WriteResult(BaseModel):
    file_path: str
    bytes_written: int
    created: bool = Field(description="True if the file did not exist before; false if it was replaced.")


class EditResult(BaseModel):
    file_path: str
    replacements: int


class BashResult(BaseModel):
    command: str
    exit_code: int
    stdout: str
    stderr: str
    network_isolated: bool = Field(description="Whether the command ran without network access.")


class GrepMatch(BaseModel):
    file_path: str
    line_number: int
    line: str


class GrepResult(BaseModel):
    pattern: str
    output_mode: str
    files: list[str] = Field(description="Files with at least one matching line.")
    matches: list[GrepMatch] = Field(description="Matching lines (output_mode 'content' only).")
    counts: dict[str, int] = Field(description="Matching lines per file (output_mode 'count' only).")
    num_matches: int = Field(description="Matching lines in all, before any cut.")


class GlobResult(BaseModel):
    pattern: str
    path: str
    files: list[str]
    truncated: bool


def _sandboxed(method):
    """One tool call at a time per working copy (``Sandbox.lock``): a path is checked and then
    used with no command running that could swap a folder for a link in between. An OS error's
    message names the real path (``[Errno 13] Permission denied: '/srv/…/code/x'``): it reaches
    the model with ``/workspace`` instead."""

    @functools.wraps(method)
    def wrapper(self: CodeTools, *args, **kwargs):
        try:
            with self.sandbox.lock:
                return method(self, *args, **kwargs)
        except OSError as e:
            raise ToolError(self.sandbox.hide_paths(f"{e.strerror or type(e).__name__}: {e.filename or ''}".rstrip(": "))
                            ) from None

    return wrapper


class CodeTools:
    """The coding tools over one sandboxed working copy."""

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox

    @tool("Read file", READ_ONLY)
    @_sandboxed
    def Read(
        self,
        file_path: FilePath,
        offset: Annotated[int, Field(ge=1, description="1-based line to start at (default 1).")] = 1,
        limit: Annotated[int, Field(ge=1, le=MAX_READ_LINES, description=f"Lines to read (default and most {MAX_READ_LINES}).")] = MAX_READ_LINES,
    ) -> ReadResult:
        """Read a text file, or `limit` lines of it from line `offset`."""
        path = self._file(file_path)
        lines = _text(path, self.sandbox).splitlines(keepends=True)
        if offset > max(1, len(lines)):
            raise ToolError(f"offset {offset} is past the end of {file_path} ({len(lines)} lines).")
        chosen = lines[offset - 1: offset - 1 + limit]
        return ReadResult(file_path=self.sandbox.show(path), content="".join(chosen), start_line=offset, num_lines=len(chosen),
                          total_lines=len(lines), truncated=offset - 1 + len(chosen) < len(lines))

    @tool("Write file", IDEMPOTENT_WRITE)
    @_sandboxed
    def Write(
        self,
        file_path: FilePath,
        content: Annotated[str, Field(max_length=MAX_FILE_CHARS, description="The complete text of the file (replaces what is there).")],
    ) -> WriteResult:
        """Create a file or replace its whole content; missing folders are created."""
        path = self.sandbox.resolve(file_path)
        if path.is_dir():
            raise ToolError(f"{file_path} is a folder; write to a file inside it, e.g. '{file_path.rstrip('/')}/notes.md'.")
        created = not path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode("utf-8")
        path.write_bytes(data)
        return WriteResult(file_path=self.sandbox.show(path), bytes_written=len(data), created=created)

    @tool("Edit file", DESTRUCTIVE)
    @_sandboxed
    def Edit(
        self,
        file_path: FilePath,
        old_string: Annotated[str, Field(min_length=1, description="Exact text to replace, indentation included; must occur once unless replace_all.")],
        new_string: Annotated[str, Field(description="The text to put in its place.")],
        replace_all: Annotated[bool, Field(description="Replace every occurrence instead of exactly one (default false).")] = False,
    ) -> EditResult:
        """Replace exact text in a file. Read the file first and copy old_string from it."""
        path = self._file(file_path)
        text = _text(path, self.sandbox)
        if old_string == new_string:
            raise ToolError("old_string and new_string are the same; nothing would change.")
        count = text.count(old_string)
        if count == 0:
            raise ToolError(f"old_string was not found in {file_path}; Read the file and copy the text exactly, "
                            "including indentation and line breaks.")
        if count > 1 and not replace_all:
            lines = _lines_of(text, old_string)
            raise ToolError(f"old_string occurs {count} times in {file_path} (lines {', '.join(map(str, lines))}); "
                            "include more of the surrounding lines so it is unique, or pass replace_all=true.")
        path.write_text(text.replace(old_string, new_string), encoding="utf-8")
        return EditResult(file_path=self.sandbox.show(path), replacements=count if replace_all else 1)

    @tool("Run command", DESTRUCTIVE)
    @_sandboxed
    def Bash(
        self,
        command: Annotated[str, Field(min_length=1, description="Command line run in the project root, e.g. 'python -m pytest -q'. "
                                                                "Pipes and && work; other shell syntax does not.")],
        timeout: Annotated[int, Field(ge=1, le=120, description="Seconds before the command is stopped (default 30, at most 120).")] = 30,
    ) -> BashResult:
        """Run an allow-listed command (ls, cat, grep, find, python, pytest, ...) without network access."""
        code, stdout, stderr = self.sandbox.run(command, timeout)
        return BashResult(command=command, exit_code=code, stdout=stdout, stderr=stderr,
                          network_isolated=self.sandbox.network_isolated())

    @tool("Search file contents", READ_ONLY)
    @_sandboxed
    def Grep(
        self,
        pattern: Annotated[str, Field(min_length=1, description=r"Python regular expression; escape special characters: 'Money\(' finds 'Money('.")],
        path: Annotated[str | None, Field(description=f"File or folder to search, starting with {ROOT} (default: all of it).")] = None,
        glob: Annotated[str | None, Field(description="Only files matching this glob, e.g. '*.py' or 'tests/**/*.py'.")] = None,
        output_mode: Annotated[Literal["files_with_matches", "content", "count"], Field(
            description="files_with_matches (default): file paths; content: matching lines; count: matches per file.")] = "files_with_matches",
    ) -> GrepResult:
        """Search file contents with a regular expression."""
        regex = search_pattern(pattern)
        base = self.sandbox.resolve(path or str(ROOT), "path")
        if not base.exists():
            raise ToolError(f"path {path!r} does not exist; use Glob to find the right folder.")
        files, matches, counts, total = [], [], {}, 0
        for file in self._walk(base):
            relative = file.relative_to(base).as_posix() if base.is_dir() else file.name
            if glob and not name_matches(relative, glob):
                continue
            text = _text_or_none(file)
            if text is None:
                continue
            hits = [(n, line) for n, line in enumerate(text.splitlines(), 1) if regex.search(line)]
            if not hits:
                continue
            shown = self.sandbox.show(file)
            files.append(shown)
            counts[shown] = len(hits)
            total += len(hits)
            matches.extend(GrepMatch(file_path=shown, line_number=n, line=line.rstrip()[:300]) for n, line in hits)
        return GrepResult(pattern=pattern, output_mode=output_mode, files=files[:MAX_RESULTS],
                          matches=matches[:MAX_RESULTS] if output_mode == "content" else [],
                          counts=counts if output_mode == "count" else {}, num_matches=total)

    @tool("Find files", READ_ONLY)
    @_sandboxed
    def Glob(
        self,
        pattern: Annotated[str, Field(min_length=1, description="Glob relative to path: '**/*.py' (any depth), 'src/*/*.py', '*.md'.")],
        path: Annotated[str | None, Field(description=f"Folder to search in, starting with {ROOT} (default: all of it).")] = None,
    ) -> GlobResult:
        """Find files by name pattern; returns their absolute paths, sorted."""
        if pattern.startswith("/"):
            raise ToolError(f"pattern {pattern!r} is absolute; patterns are relative to path, e.g. "
                            f"pattern='**/*.py', path='{ROOT}/src'.")
        if ".." in pattern.split("/"):
            raise ToolError(f"pattern {pattern!r}: '..' is not allowed; search from a higher path instead.")
        base = self.sandbox.resolve(path or str(ROOT), "path")
        if not base.is_dir():
            raise ToolError(f"path {path!r} is not a folder; give the folder to search in, e.g. '{ROOT}/src'.")
        regex = TimedPattern(glob_regex(pattern), f"glob {pattern!r}")
        found = sorted(self.sandbox.show(f) for f in self._walk(base) if regex.match(f.relative_to(base).as_posix()))
        return GlobResult(pattern=pattern, path=self.sandbox.show(base), files=found[:MAX_RESULTS],
                          truncated=len(found) > MAX_RESULTS)

    # ------------------------------------------------------------ helpers

    def _file(self, file_path: str) -> Path:
        path = self.sandbox.resolve(file_path)
        if path.is_dir():
            raise ToolError(f"{file_path} is a folder, not a file; list it with Glob(pattern='*', path='{file_path}').")
        if not path.is_file():
            raise ToolError(f"No file {file_path}. Find the right path with Glob, e.g. Glob(pattern='**/{path.name}').")
        return path

    def _walk(self, base: Path):
        """Files under ``base`` (or ``base`` itself), sorted; links that lead out are skipped."""
        if base.is_file():
            yield base
            return
        for folder, dirs, names in os.walk(base):
            dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and self.sandbox.inside(Path(folder) / d))
            for name in sorted(names):
                file = Path(folder) / name
                if self.sandbox.inside(file) and file.is_file():
                    yield file


def build(data_dir: Path, *, reset: bool = False) -> MCPServer:
    """The code MCP server over the working copy ``data_dir/code`` (copied from the project on first use)."""
    root = Path(data_dir) / "code"
    if reset and root.exists():
        shutil.rmtree(root)
    if not root.exists():
        root.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(PROJECT, root, ignore=shutil.ignore_patterns(*_SKIP_DIRS))
    commands = os.environ.get("TOOLTUNE_CODE_COMMANDS")
    allowed = {c.strip() for c in commands.split(",") if c.strip()} if commands else DEFAULT_COMMANDS
    return register(MCPServer("code", instructions=INSTRUCTIONS), CodeTools(Sandbox(root, commands=allowed)))


def _text(path: Path, sandbox: Sandbox) -> str:
    text = _text_or_none(path)
    if text is None:
        raise ToolError(f"{sandbox.show(path)} is not a UTF-8 text file (or is larger than {MAX_FILE_CHARS} characters).")
    return text


def _text_or_none(path: Path) -> str | None:
    try:
        if path.stat().st_size > 4 * MAX_FILE_CHARS:
            return None
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None


def _lines_of(text: str, needle: str) -> list[int]:
    lines, start = [], 0
    while (at := text.find(needle, start)) != -1:
        lines.append(text.count("\n", 0, at) + 1)
        start = at + 1
    return lines
