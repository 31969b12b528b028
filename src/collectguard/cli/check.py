"""``collectguard check [PATH|-]``: events in, one decision per line out (DESIGN.md §7).

Input: JSON Lines (one event per line), or one JSON document — a single event, pretty-printed
or not, or an array of events (``cli/_jsonin.py``). Output: one compact JSON decision per event on
stdout, in input order, UTF-8, not ASCII-escaped. Exit 0 whatever the verdicts; malformed input
raises ``BadInput`` naming the line and field (the decisions before it are written), which the CLI
turns into exit 2 and one line on stderr.

Speed: the top-level imports stay light (no Typer, web or database stack). JSON Lines input
longer than one batch is judged by worker processes forked from this one (one per CPU), batch
by batch, the output still in input order; the compiled packs and warm caches are inherited.
Batches travel through pipes as bytes each way — the lines in, the UTF-8 decisions out
(``cli/_forkmap.py``) — so this process only reads, forwards and writes.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any

from collectguard.cli._jsonin import JsonLines, open_input, read_head

if TYPE_CHECKING:
    import typer

    from collectguard.rules.guard import Guard

__all__ = ["check_command", "register"]

_BATCH = 2000  # lines judged here first: the workers start with the caches this warms
_BLOCK = 1 << 19  # bytes of whole lines per batch after that (about 2,000 events)
_IN_FLIGHT = 3  # batches queued per worker: enough to keep it busy, bounded memory

_worker_guard: Guard | None = None  # set before the fork; workers inherit it


def _lines(data: bytes) -> list[bytes]:
    """``data`` split into lines as iterating the file gives them: at b"\\n" only, each keeping it."""
    if b"\r" not in data:
        return data.splitlines(keepends=True)  # the same split when there is no \r (fast)
    return list(io.BytesIO(data))


def _work(first_line: int, data: bytes) -> tuple[bytes, Any]:
    """A worker's batch: (the decisions as UTF-8 lines, the first bad line as a list, or None)."""
    assert _worker_guard is not None
    out, bad = _worker_guard.check_utf8(_lines(data), first_line=first_line)
    return out, None if bad is None else list(bad)


def _blocks(src: IO[bytes], first_line: int) -> Iterator[tuple[int, bytes]]:
    """The rest of ``src`` as (number of the first line, about ``_BLOCK`` bytes of whole lines)."""
    line = first_line
    while data := src.read(_BLOCK):
        if not data.endswith(b"\n"):
            data += src.readline()  # up to the end of the line (or of the input)
        yield line, data
        line += data.count(b"\n") + (not data.endswith(b"\n"))


def _default_workers() -> int:
    return min(os.cpu_count() or 1, 8)


def _json_lines(guard: Guard, head: JsonLines, src: IO[bytes], write: Callable[[bytes], None], workers: int) -> None:
    """JSON Lines: the first batch here, the rest in worker processes when there is more."""
    batch = [head.first, *itertools.islice(src, _BATCH - 1)]
    data, bad = guard.check_utf8(batch, first_line=head.line)
    write(data)
    if bad is not None:
        raise bad.to_error()
    rest = _blocks(src, head.line + len(batch))
    if workers > 1 and len(batch) == _BATCH and hasattr(os, "fork"):
        _parallel(guard, rest, write, workers)
        return
    for line, block in rest:
        data, bad = guard.check_utf8(_lines(block), first_line=line)
        write(data)
        if bad is not None:
            raise bad.to_error()


def _parallel(guard: Guard, jobs: Iterator[tuple[int, bytes]], write: Callable[[bytes], None], workers: int) -> None:
    from collectguard.cli._forkmap import ordered_map
    from collectguard.rules.guard import BadLine

    global _worker_guard
    _worker_guard = guard
    try:
        bad = ordered_map(_work, jobs, write, workers=workers, in_flight=_IN_FLIGHT)
    finally:
        _worker_guard = None
    if bad is not None:
        raise BadLine(*bad).to_error()


def _document(guard: Guard, doc: Any, emit: Callable[[str], None]) -> None:
    """One JSON document over several lines: a pretty-printed event, or an array of events."""
    from pydantic import ValidationError

    from collectguard.domain.event import CollectionEvent, bad_input_from

    events = doc if isinstance(doc, list) else [doc]
    for i, obj in enumerate(events):
        # Through JSON again so that one document and JSON Lines are validated the same way.
        encoded = json.dumps(obj, ensure_ascii=False)
        try:
            event = CollectionEvent.model_validate_json(encoded)
        except ValidationError as exc:
            # In an array the field starts with the element's index: "3.recipient.role".
            raise bad_input_from(exc, prefix=str(i) if isinstance(doc, list) else None) from None
        emit(guard.check(event).model_dump_json())


def check_command(path: str = "-", *, out: IO[str] | None = None, workers: int | None = None) -> None:
    """Judge the events in ``path`` (``-``: stdin) and write one decision per line to ``out``.

    ``workers``: processes for long JSON Lines input (default: one per CPU; 1 = none).
    Raises ``BadInput`` (exit 2 at the CLI) naming the line and field of the first bad event;
    the decisions for the events before it have been written.
    """
    from collectguard.rules.guard import Guard  # deferred: keeps `collectguard --help` fast

    stream = out if out is not None else sys.stdout
    binary: IO[bytes] | None = getattr(stream, "buffer", None)
    stream.flush()

    def write(data: bytes) -> None:
        if binary is not None:
            binary.write(data)  # UTF-8 whatever the locale says
        else:
            stream.write(data.decode())

    def emit(text: str) -> None:
        write(text.encode() + b"\n")

    src = open_input(path)
    try:
        head = read_head(src)
        if head is None:
            return
        guard = Guard.default()
        if isinstance(head, JsonLines):
            _json_lines(guard, head, src, write, workers or _default_workers())
        else:
            _document(guard, head.value, emit)
    finally:
        if binary is not None:
            binary.flush()
        else:
            stream.flush()
        if src is not sys.stdin.buffer:
            src.close()


def register(app: typer.Typer) -> None:
    """Add the ``check`` command to the Typer ``app`` (called by ``collectguard.cli.main``)."""
    import typer

    @app.command("check")
    def check(
        path: str = typer.Argument("-", help="JSON event or JSON Lines file; - reads stdin"),
    ) -> None:
        """Judge collection events: one decision (JSON) per event on stdout."""
        check_command(path)


def main(argv: list[str] | None = None) -> int:
    """``check`` without the Typer app: ``[PATH|-]`` only; errors as ``collectguard`` reports them
    (one line on stderr; exit 2 for bad input, 0 when stdout is closed early, 130 on Ctrl-C).
    For a launcher that sends ``collectguard check FILE`` here, skipping the rest of the CLI's
    start-up."""
    from collectguard.errors import CollectguardError

    args = sys.argv[1:] if argv is None else argv
    try:
        check_command(args[0] if args else "-")
    except CollectguardError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":  # `python -m collectguard.cli.check FILE`: the bare check path
    sys.exit(main())
