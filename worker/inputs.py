"""Reading articles from files, folders and JSON-lines streams: the payloads producers hand over.

Nothing here validates an article (that is :func:`worker.ingest.parse_job`); a file or stream that
cannot be read is an :class:`InputError` naming the file and line.
"""

from __future__ import annotations

import html as html_lib
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from worker.ingest import HTML_TITLE, json_type_name

# The file types read as articles: by `newsclass enqueue PATH`, `classify`, `demo` and drop folders.
INGESTIBLE_SUFFIXES = (".txt", ".html", ".htm", ".json", ".jsonl")
_TITLE_MAX = 200


class InputError(ValueError):
    """A file, folder or stream that cannot be read as articles; the message names where."""


def is_ingestible(path: Path) -> bool:
    """Whether the file's type is one read as articles (by its suffix, in any case)."""
    return path.suffix.lower() in INGESTIBLE_SUFFIXES


def iter_payloads(paths: Sequence[Path], jsonl: str | None) -> Iterator[object]:
    """Payloads from files/folders and a JSONL file (or - for standard input): dicts from files,
    and whatever each JSONL line holds (parse_job says what is wrong with it)."""
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and is_ingestible(p))
        elif path.is_file():
            files = [path]
        else:
            raise InputError(f"no such file or folder: {path}")
        for file in files:
            yield from read_article_file(file)
    if jsonl:
        lines: Iterable[str] = sys.stdin if jsonl == "-" else open_lines(Path(jsonl))
        name = "<stdin>" if jsonl == "-" else jsonl
        for _, item in iter_jsonl(lines, name):
            yield item


def open_lines(path: Path) -> Iterator[str]:
    """The lines of a UTF-8 text file, read lazily."""
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    with path.open(encoding="utf-8") as fh:
        yield from fh


def iter_jsonl(lines: Iterable[str], name: str) -> Iterator[tuple[int, object]]:
    """(line number, value) for each non-blank line of a JSON-lines stream called ``name``."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{name}:{number}: not JSON: {exc.msg}") from None


def read_article_file(path: Path) -> list[dict[str, Any]]:
    """Job payloads read from one file (for ``newsclass enqueue PATH``); not yet validated.

    ``.txt``: first line is the title when short and followed by a blank line; ``.html``/``.htm``:
    the raw page as ``body``, title from ``<title>``; ``.json``: one object or a list of objects;
    ``.jsonl``: one object per line, blank lines skipped."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not is_ingestible(path):
        raise InputError(
            f"{path}: unsupported file type {suffix or '(none)'!r}; "
            f"use {', '.join(INGESTIBLE_SUFFIXES)}"
        )
    content = _read(path)
    if suffix == ".txt":
        return [_txt_payload(content)]
    if suffix in {".html", ".htm"}:
        payload: dict[str, Any] = {"body": content}
        title = HTML_TITLE.search(content)
        if title:
            text = " ".join(html_lib.unescape(title.group(1)).split())
            if text:
                payload["title"] = text
        return [payload]
    if suffix == ".json":
        try:
            return _as_objects(json.loads(content), path)
        except json.JSONDecodeError as error:
            raise InputError(f"{path}:{error.lineno}: bad JSON: {error.msg}") from None
    payloads: list[dict[str, Any]] = []
    for number, item in iter_jsonl(content.splitlines(), str(path)):
        if not isinstance(item, dict):
            raise InputError(f"{path}:{number}: expected a JSON object, got {json_type_name(item)}")
        payloads.append(item)
    return payloads


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None


def _txt_payload(content: str) -> dict[str, Any]:
    lines = content.splitlines()
    start = next((index for index, line in enumerate(lines) if line.strip()), None)
    if start is not None and start + 2 < len(lines):
        first = lines[start].strip()
        rest = "\n".join(lines[start + 2 :])
        if len(first) < _TITLE_MAX and not lines[start + 1].strip() and rest.strip():
            return {"title": first, "body": rest.strip("\n")}
    return {"body": content}


def _as_objects(items: object, path: Path) -> list[dict[str, Any]]:
    if isinstance(items, dict):
        return [items]
    if isinstance(items, list):
        for number, item in enumerate(items, start=1):
            if not isinstance(item, dict):
                raise InputError(
                    f"{path}: item {number} is a JSON {json_type_name(item)}, not an object"
                )
        return items
    raise InputError(
        f"{path}: expected a JSON object or a list of objects, got {json_type_name(items)}"
    )
