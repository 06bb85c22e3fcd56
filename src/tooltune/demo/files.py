"""The ``files`` demo service: a small team workspace of text files, kept in SQLite.

Nothing touches the real disk: paths live in a table, so a model can be let loose on
``delete_file`` safely. Folders exist implicitly while they contain a file.

Quirks a model has to get right:

- **Paths are absolute** and use ``/``: ``/docs/onboarding.md``, not ``docs/onboarding.md``
  or ``onboarding.md``. ``..`` is refused.
- **write_file replaces the whole file** (no append): to add a line, read, edit, then write.
- **extension is given without the dot**: ``md``, not ``.md``.
- **delete_file deletes one file and cannot be undone**; folders cannot be deleted directly.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from pydantic import AfterValidator, BaseModel, Field

from tooltune.demo.db import DEMO_NOW, Database, iso, now_iso, open_database
from tooltune.demo.tooling import DESTRUCTIVE, IDEMPOTENT_WRITE, READ_ONLY, ToolError, register, tool

MAX_FILE_CHARS = 100_000

INSTRUCTIONS = (
    "A team workspace of text files. Paths are absolute, starting with '/', e.g. '/docs/onboarding.md'. "
    "write_file replaces the whole file. Use list_files('/') to see the top level."
)

SCHEMA = "CREATE TABLE files (path TEXT PRIMARY KEY, content TEXT NOT NULL, modified_at TEXT NOT NULL)"


def _check_path(value: str) -> str:
    # Reject rather than guess: a relative path could mean several files, and the error teaches the form.
    if not value.startswith("/"):
        raise ValueError(f"{value!r} is not an absolute path; paths start with '/', e.g. '/{value.lstrip('./')}'")
    parts = PurePosixPath(value).parts
    if ".." in parts or "." in parts:
        raise ValueError(f"{value!r}: '.' and '..' are not allowed; give the full path from '/'")
    return "/" + "/".join(parts[1:])


def _check_extension(value: str) -> str:
    if value.startswith("."):
        raise ValueError(f"give the extension without the dot: {value.lstrip('.')!r}, not {value!r}")
    if not value.isalnum():
        raise ValueError(f"{value!r} is not a file extension; use letters and digits only, e.g. 'md' or 'csv'")
    return value.lower()


Extension = Annotated[str, AfterValidator(_check_extension)]
FilePath = Annotated[str, AfterValidator(_check_path), Field(description="Absolute file path starting with '/', e.g. '/docs/onboarding.md'.")]


class Entry(BaseModel):
    name: str
    path: str
    type: Literal["file", "folder"]
    size_bytes: int | None = Field(description="File size in bytes (UTF-8); null for folders.")
    modified_at: str | None = Field(description="Last write, ISO 8601 UTC; null for folders.")


class Listing(BaseModel):
    folder: str
    entries: list[Entry]


class FileContent(BaseModel):
    path: str
    content: str
    size_bytes: int
    modified_at: str


class WriteResult(BaseModel):
    path: str
    size_bytes: int
    created: bool = Field(description="True if the file did not exist before; false if it was replaced.")


class Match(BaseModel):
    path: str
    line_number: int | None = Field(description="1-based line of the match; null when only the file name matched.")
    line: str | None


class SearchResult(BaseModel):
    query: str
    matches: list[Match]
    count: int


class DeleteResult(BaseModel):
    path: str
    deleted: bool


class Workspace:
    """The workspace's tools over one SQLite database."""

    def __init__(self, db: Database):
        self.db = db

    @tool("List files", READ_ONLY)
    def list_files(
        self,
        folder: Annotated[str, AfterValidator(_check_path), Field(description="Absolute folder path, e.g. '/' or '/docs'.")] = "/",
    ) -> Listing:
        """List the files and sub-folders directly inside a folder (not recursive), folders first."""
        prefix = folder.rstrip("/") + "/"
        with self.db.read() as conn:
            rows = conn.execute("SELECT * FROM files WHERE path LIKE ? ESCAPE '\\' ORDER BY path", (_like_prefix(prefix),)).fetchall()
        if not rows and folder != "/":
            raise ToolError(f"No folder {folder!r}. Use list_files('/') to see what exists.")
        return Listing(folder=folder, entries=_entries(rows, prefix))

    @tool("Read file", READ_ONLY)
    def read_file(self, path: FilePath) -> FileContent:
        """Return the full text content of one file."""
        with self.db.read() as conn:
            row = _file_row(conn, path)
        return FileContent(path=path, content=row["content"], size_bytes=_size(row["content"]), modified_at=row["modified_at"])

    @tool("Write file", IDEMPOTENT_WRITE)
    def write_file(
        self,
        path: FilePath,
        content: Annotated[str, Field(max_length=MAX_FILE_CHARS, description="The complete new text of the file (replaces any existing content).")],
    ) -> WriteResult:
        """Create a file, or replace an existing file's entire content. Missing folders are created."""
        with self.db.write() as conn:
            if _is_folder(conn, path):
                raise ToolError(f"{path!r} is a folder; write to a file inside it, e.g. '{path}/notes.md'.")
            existed = conn.execute("SELECT 1 FROM files WHERE path = ?", (path,)).fetchone() is not None
            conn.execute(
                "INSERT INTO files VALUES (?, ?, ?) ON CONFLICT (path) DO UPDATE SET content = excluded.content, modified_at = excluded.modified_at",
                (path, content, now_iso()),
            )
        return WriteResult(path=path, size_bytes=_size(content), created=not existed)

    @tool("Search files", READ_ONLY)
    def search_files(
        self,
        query: Annotated[str, Field(min_length=1, description="Text to look for in file names and contents (case-insensitive).")],
        extension: Annotated[Extension | None, Field(
            description="Only files with this extension, without the dot, e.g. 'md' or 'csv'. Omit for all files.")] = None,
    ) -> SearchResult:
        """Find files whose name or content contains the query; returns each matching line (up to 50 matches)."""
        with self.db.read() as conn:
            rows = conn.execute("SELECT path, content FROM files ORDER BY path").fetchall()
        matches = [m for r in rows if extension is None or r["path"].lower().endswith("." + extension) for m in _find(r, query.lower())]
        return SearchResult(query=query, matches=matches[:50], count=len(matches[:50]))

    @tool("Delete file", DESTRUCTIVE)
    def delete_file(self, path: FilePath) -> DeleteResult:
        """Permanently delete one file. Cannot be undone; folders cannot be deleted (delete their files)."""
        with self.db.write() as conn:
            _file_row(conn, path)
            conn.execute("DELETE FROM files WHERE path = ?", (path,))
        return DeleteResult(path=path, deleted=True)


def build(data_dir: Path, *, reset: bool = False) -> MCPServer:
    """The files MCP server over ``data_dir/files.sqlite`` (seeded on first use)."""
    db = open_database(data_dir / "files.sqlite", "files", SCHEMA, seed, reset=reset)
    return register(MCPServer("files", instructions=INSTRUCTIONS), Workspace(db))


def _file_row(conn: sqlite3.Connection, path: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM files WHERE path = ?", (path,)).fetchone()
    if row is not None:
        return row
    if _is_folder(conn, path):
        raise ToolError(f"{path!r} is a folder, not a file; use list_files({path!r}).")
    raise ToolError(f"No file {path!r}. Use list_files or search_files to find the right path.")


def _is_folder(conn: sqlite3.Connection, path: str) -> bool:
    prefix = _like_prefix(path.rstrip("/") + "/")
    return conn.execute("SELECT 1 FROM files WHERE path LIKE ? ESCAPE '\\' LIMIT 1", (prefix,)).fetchone() is not None


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _entries(rows: list[sqlite3.Row], prefix: str) -> list[Entry]:
    folders: dict[str, Entry] = {}
    files: list[Entry] = []
    for row in rows:
        rest = row["path"][len(prefix):]
        name, _, deeper = rest.partition("/")
        if deeper:
            folders.setdefault(name, Entry(name=name, path=prefix + name, type="folder", size_bytes=None, modified_at=None))
        else:
            files.append(Entry(name=name, path=row["path"], type="file", size_bytes=_size(row["content"]), modified_at=row["modified_at"]))
    return [*folders.values(), *files]


def _find(row: sqlite3.Row, needle: str) -> list[Match]:
    found = [Match(path=row["path"], line_number=None, line=None)] if needle in PurePosixPath(row["path"]).name.lower() else []
    for number, line in enumerate(row["content"].splitlines(), start=1):
        if needle in line.lower():
            found.append(Match(path=row["path"], line_number=number, line=line.strip()[:200]))
    return found


def _size(content: str) -> int:
    return len(content.encode("utf-8"))


# ---------------------------------------------------------------- seed data

_FILES = {
    "/README.md": "# Team workspace\n\nShared notes, docs and reports for the payments team.\n\n- docs/: how things work\n- notes/: meeting notes and todos\n- reports/: monthly numbers (CSV)\n",
    "/docs/onboarding.md": "# Onboarding\n\n1. Get access to the shop admin (ask Lena).\n2. Read docs/api/payments.md.\n3. Pair with Tom on a refund ticket in your first week.\n\nAll amounts in our APIs are integer cents: $50.00 is 5000.\n",
    "/docs/api/payments.md": "# Payments API\n\ncreate_payment(amount, invoice_id, customer_id, currency)\n\n- amount: integer, smallest currency unit (cents)\n- currency: ISO 4217, must match the invoice\n\nCard payments settle immediately; bank transfers go pending -> processing -> completed.\n",
    "/docs/api/refunds.md": "# Refunds\n\nOnly completed payments can be refunded. Partial refunds are allowed until the\npayment is fully refunded. Always record a reason: finance audits refunds monthly.\n",
    "/docs/runbooks/payment-failures.md": "# Runbook: payment failures\n\nIf the failure rate exceeds 5% for 10 minutes, page the on-call engineer.\nCheck the processor status page first. Failed card payments show failure_reason card_declined.\n",
    "/notes/2025-05-26-standup.md": "# Standup 2025-05-26\n\n- Priya: refund reasons now required in the admin UI\n- Tom: investigating duplicate invoice emails\n- Mei: Q2 report draft ready for review\n",
    "/notes/2025-06-02-standup.md": "# Standup 2025-06-02\n\n- Sam: payments API design review moved to Tuesday 10:00 UTC\n- Mei: JPY invoices must not be multiplied by 100\n- Alex: planning offsite Thursday, agenda TBD\n",
    "/notes/todo.txt": "- [ ] Review Q2 sales report\n- [ ] Update refund runbook\n- [x] Invite Diego to the Acme call\n- [ ] Book room for Demo Friday\n",
    "/reports/2025-04-sales.csv": "region,orders,revenue_cents,refunds_cents\nUS,412,3921450,120399\nEU,388,3344120,99800\nUK,97,801230,12999\nAPAC,54,512300,0\n",
    "/reports/2025-05-sales.csv": "region,orders,revenue_cents,refunds_cents\nUS,451,4410230,88700\nEU,402,3521900,143200\nUK,110,912040,25998\nAPAC,61,590120,4999\n",
    "/src/invoice_total.py": "def invoice_total(lines):\n    \"\"\"Sum order lines; every price is in cents.\"\"\"\n    return sum(qty * unit_price_cents for qty, unit_price_cents in lines)\n",
}


def seed(conn: sqlite3.Connection) -> None:
    """Insert the fixture workspace: 11 files in five folders, stamped 08:00 on the demo day."""
    stamp = iso(DEMO_NOW.replace(hour=8))
    conn.executemany("INSERT INTO files VALUES (?, ?, ?)", [(path, text, stamp) for path, text in _FILES.items()])
