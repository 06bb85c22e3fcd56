"""Reading a document's text: every way it can fail becomes one DocumentError naming the file."""

from __future__ import annotations

from pathlib import Path

from tooltune.errors import DocumentError


def read_text(path: str | Path) -> str:
    """The UTF-8 text of ``path``; a missing, unreadable or binary file raises :class:`DocumentError`."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise DocumentError(f"{path}: no such file. Check the path (relative paths start at {Path.cwd()}).") from e
    except IsADirectoryError as e:
        raise DocumentError(f"{path}: is a folder, not a file. Give the path of the file inside it.") from e
    except UnicodeDecodeError as e:
        raise DocumentError(f"{path}: not UTF-8 text (byte {e.start} is {e.object[e.start:e.start + 1]!r}); "
                            "save the file as UTF-8.") from e
    except OSError as e:
        raise DocumentError(f"{path}: cannot read the file: {e.strerror or e}.") from e
