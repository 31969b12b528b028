"""Reading JSON input for the batch commands (``check``, ``qa``): JSON Lines or one JSON document.

    src = open_input(path)                 # "-" is stdin; BadInput (field PATH) if unreadable
    head = read_head(src)                  # None: nothing but blank lines
    if isinstance(head, JsonLines): ...    # head.first (bytes) at head.line, the rest still in src
    else: head.value                       # the parsed document (an object or an array)

JSON Lines is recognised by its first non-blank line being a JSON object on its own; anything else
is read whole as one document (an object over several lines, or an array). A UTF-8 byte-order mark
(as Windows editors write) is skipped. Malformed documents raise ``BadInput`` naming the line.
Lines stay bytes with their newline, so a bad line's error names the same column as the file does.
"""

from __future__ import annotations

import json
import sys
from typing import IO, Any, NamedTuple

from collectguard.errors import BadInput

__all__ = ["Document", "JsonLines", "open_input", "read_head"]

_BOM = b"\xef\xbb\xbf"


class JsonLines(NamedTuple):
    """JSON Lines input: the first non-blank line (``line`` counts from 1); the rest is unread."""

    line: int
    first: bytes


class Document(NamedTuple):
    """One JSON document that started at ``line``: ``value`` is what it decoded to."""

    line: int
    value: Any


def open_input(path: str) -> IO[bytes]:
    """``path`` opened for reading bytes (``-``: stdin); the caller closes it unless it is stdin."""
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}", field="PATH") from None


def read_head(src: IO[bytes]) -> JsonLines | Document | None:
    """Look at the first non-blank line of ``src``: JSON Lines (the rest left in ``src``) or one
    document (read and decoded whole); ``None`` when there is nothing but blank lines."""
    lineno, first = 0, b""
    for raw in src:
        lineno += 1
        if lineno == 1:
            raw = raw.removeprefix(_BOM)
        if raw.strip():
            first = raw
            break
    if not first:
        return None
    try:
        head: Any = json.loads(first)
    except ValueError:
        head = None
    if isinstance(head, dict):
        return JsonLines(lineno, first)
    text = first + src.read()
    try:
        return Document(lineno, json.loads(text))
    except ValueError as exc:
        line = getattr(exc, "lineno", 1) + lineno - 1
        raise BadInput(f"not valid JSON ({getattr(exc, 'msg', exc)})", line=line) from None
