"""``collectguard check [PATH|-]``: events in, one decision per line out (DESIGN.md §7).

Input: JSON Lines (one event per line), or one JSON document — a single event, pretty-printed
or not, or an array of events. Output: one compact JSON decision per event on stdout, in input
order, UTF-8, not ASCII-escaped. Exit 0 whatever the verdicts; malformed input raises
``BadInput`` naming the line and field (the decisions before it are written), which the CLI turns
into exit 2 and one line on stderr.

Speed: the top-level imports stay light (no Typer, web or database stack). JSON Lines input
longer than one batch is judged by worker processes forked from this one (one per CPU), batch
by batch, the output still in input order; the compiled packs and warm caches are inherited.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from collections import deque
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any

from collectguard.errors import BadInput

if TYPE_CHECKING:
    import typer

    from collectguard.rules.guard import BadLine, Guard

__all__ = ["check_command", "register"]

_BATCH = 2000  # lines per batch handed to a worker
_IN_FLIGHT = 3  # batches queued per worker: enough to keep it busy, bounded memory

_worker_guard: Guard | None = None  # set before the fork; workers inherit it


def _open(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")  # closed by check_command
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}", field="PATH") from None


def _work(job: tuple[int, list[bytes]]) -> tuple[str, BadLine | None]:
    """A worker's batch: (decisions joined by newlines, the first bad line or None)."""
    assert _worker_guard is not None
    out, bad = _worker_guard.check_batch(job[1], first_line=job[0])
    return "\n".join(out), bad


def _batches(src: IO[bytes], first_line: int) -> Iterator[tuple[int, list[bytes]]]:
    line = first_line
    while chunk := list(itertools.islice(src, _BATCH)):
        yield line, chunk
        line += len(chunk)


def _default_workers() -> int:
    return min(os.cpu_count() or 1, 8)


def _json_lines(
    guard: Guard, first: tuple[int, list[bytes]], src: IO[bytes], emit: Callable[[str], None], workers: int
) -> None:
    """JSON Lines: the first batch here, the rest in worker processes when there is more."""
    out, bad = guard.check_batch(first[1], first_line=first[0])
    if out:
        emit("\n".join(out))
    if bad is not None:
        raise bad.to_error()
    rest = _batches(src, first[0] + len(first[1]))
    if workers > 1 and len(first[1]) == _BATCH and "fork" in _start_methods():
        _parallel(guard, rest, emit, workers)
        return
    for job in rest:
        out, bad = guard.check_batch(job[1], first_line=job[0])
        if out:
            emit("\n".join(out))
        if bad is not None:
            raise bad.to_error()


def _start_methods() -> list[str]:
    import multiprocessing

    return multiprocessing.get_all_start_methods()


def _parallel(guard: Guard, jobs: Iterator[tuple[int, list[bytes]]], emit: Callable[[str], None], workers: int) -> None:
    import multiprocessing

    global _worker_guard
    _worker_guard = guard
    pool = multiprocessing.get_context("fork").Pool(workers)
    try:
        pending: deque[Any] = deque()

        def drain_one() -> None:
            text, bad = pending.popleft().get()
            if text:
                emit(text)
            if bad is not None:
                raise bad.to_error()

        for job in jobs:
            pending.append(pool.apply_async(_work, (job,)))
            if len(pending) >= workers * _IN_FLIGHT:
                drain_one()
        while pending:
            drain_one()
    finally:
        pool.terminate()
        pool.join()
        _worker_guard = None


def _document(guard: Guard, text: bytes, first_line: int, emit: Callable[[str], None]) -> None:
    """One JSON document over several lines: a pretty-printed event, or an array of events."""
    from pydantic import ValidationError

    from collectguard.domain.event import CollectionEvent, bad_input_from

    try:
        doc = json.loads(text)
    except ValueError as exc:
        line = getattr(exc, "lineno", 1) + first_line - 1
        raise BadInput(f"not valid JSON ({getattr(exc, 'msg', exc)})", line=line) from None
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

    def emit(text: str) -> None:
        if binary is not None:
            binary.write(text.encode("utf-8") + b"\n")  # UTF-8 whatever the locale says
        else:
            stream.write(text + "\n")

    src = _open(path)
    try:
        guard = Guard.default()
        lineno = 0
        first = b""
        for raw in src:
            lineno += 1
            if raw.strip():
                first = raw
                break
        if not first:
            return
        try:
            head: Any = json.loads(first)
        except ValueError:
            head = None
        if isinstance(head, dict):
            batch = [first, *itertools.islice(src, _BATCH - 1)]
            _json_lines(guard, (lineno, batch), src, emit, workers or _default_workers())
        else:
            _document(guard, first + src.read(), lineno, emit)
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


if __name__ == "__main__":  # `python -m collectguard.cli.check FILE`: the bare check path
    try:
        check_command(sys.argv[1] if len(sys.argv) > 1 else "-")
    except BadInput as err:
        print(f"error: {err.message}", file=sys.stderr)
        sys.exit(err.exit_code)
