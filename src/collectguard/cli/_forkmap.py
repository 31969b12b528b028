"""An ordered parallel map over byte batches, in worker processes forked from this one.

    stop = ordered_map(fn, jobs, write, workers=2)

Each job is ``(tag, data)``; a worker runs ``fn(tag, data) -> (output, stop)`` and ``write`` gets
every output in job order. ``stop`` (a JSON value, or ``None``) ends the map after that job's
output: ``ordered_map`` returns it and no later output is written. Workers are forked, so they
start with everything this process has loaded (compiled rule packs, warm caches).

Why not ``multiprocessing.Pool``: its pickling, queues and helper threads cost this process about
as much CPU per megabyte of output as judging the events costs a worker. Here each worker has two
pipes (jobs in, outputs out, framed by a small header) and this process only copies bytes: one
``poll`` loop hands the next job to the least busy worker, keeps at most ``in_flight`` jobs per
worker, and writes the outputs in order.

A worker that dies (or fails) makes ``ordered_map`` raise ``RuntimeError``; on any exit, normal
or not, every worker is ended and reaped.
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import struct
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["ordered_map"]

_HEAD = struct.Struct("<qq")  # jobs: (tag, length); outputs: (output length, stop length)
_PIPE_SIZE = 1 << 20  # bytes a pipe holds (Linux): fewer wake-ups per megabyte


class _Worker:
    """This process's side of one worker: its pid, pipes, and what is in flight."""

    def __init__(self, pid: int, jobs_w: int, out_r: int) -> None:
        self.pid = pid
        self.jobs_w = jobs_w
        self.out_r = out_r
        self.sending: deque[memoryview] = deque()  # job frames (or parts) not yet written
        self.received = bytearray()  # output bytes not yet parsed into frames
        self.done: deque[tuple[bytes, Any]] = deque()  # finished outputs, in this worker's order
        self.in_flight = 0
        self.stopped = False  # gave a stop: it has exited, nothing more to send or read
        self.closed = False  # its end of the jobs pipe is gone: it has exited (read why from out_r)


def _bigger_pipe(fd: int) -> None:
    import fcntl

    setpipe = getattr(fcntl, "F_SETPIPE_SZ", None)  # Linux only
    if setpipe is not None:
        try:
            fcntl.fcntl(fd, setpipe, _PIPE_SIZE)
        except OSError:  # a limit below 1 MiB: the default size works, only slower
            pass


def _read_exact(fd: int, n: int) -> bytes | None:
    """``n`` bytes from ``fd``, or ``None`` at end of file before the first byte."""
    parts: list[bytes] = []
    left = n
    while left:
        chunk = os.read(fd, min(left, _PIPE_SIZE))
        if not chunk:
            if left == n:
                return None
            raise EOFError("job cut short")
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _serve(fn: Callable[[int, bytes], tuple[bytes, Any]], jobs_r: int, out_w: int) -> None:
    """A worker's life: read a job, run it, write its output frame; until end of input or a stop."""
    while True:
        head = _read_exact(jobs_r, _HEAD.size)
        if head is None:
            return
        tag, length = _HEAD.unpack(head)
        data = _read_exact(jobs_r, length) if length else b""
        if data is None:
            raise EOFError("job cut short")
        output, stop = fn(tag, data)
        stop_blob = b"" if stop is None else json.dumps(stop).encode()
        _write_all(out_w, _HEAD.pack(len(output), len(stop_blob)))
        _write_all(out_w, output)
        _write_all(out_w, stop_blob)
        if stop is not None:
            return


def _fork(fn: Callable[[int, bytes], tuple[bytes, Any]], workers: int) -> list[_Worker]:
    started: list[_Worker] = []
    # What exists now lives as long as the workers: frozen, their collector never walks it again
    # (and copy-on-write pages stay shared).
    gc.freeze()
    try:
        for _ in range(workers):
            jobs_r, jobs_w = os.pipe()
            out_r, out_w = os.pipe()
            _bigger_pipe(jobs_w)
            _bigger_pipe(out_w)
            pid = os.fork()
            if pid == 0:  # the worker: never returns into the caller's code
                code = 1
                try:
                    for w in started:  # the other workers' pipes: theirs to see closed
                        os.close(w.jobs_w)
                        os.close(w.out_r)
                    os.close(jobs_w)
                    os.close(out_r)
                    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: the parent reports it
                    _serve(fn, jobs_r, out_w)
                    code = 0
                except Exception as exc:  # reported by the parent as a worker that ended
                    os.write(2, f"check worker: {type(exc).__name__}: {exc}\n".encode())
                finally:
                    os._exit(code)  # no atexit handlers, no flushing of the parent's buffers
            os.close(jobs_r)
            os.close(out_w)
            os.set_blocking(jobs_w, False)
            os.set_blocking(out_r, False)
            started.append(_Worker(pid, jobs_w, out_r))
    except BaseException:
        _end(started)
        raise
    finally:
        gc.unfreeze()
    return started


def _end(workers: list[_Worker]) -> None:
    """Close every pipe, end every worker that is still running and reap them all."""
    for w in workers:
        for fd in (w.jobs_w, w.out_r):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.kill(w.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(w.pid, 0)
        except ChildProcessError:
            pass


def _parse(w: _Worker) -> None:
    """Move every complete output frame from ``w.received`` to ``w.done``."""
    buf = w.received
    start = 0
    while len(buf) - start >= _HEAD.size:
        n_out, n_stop = _HEAD.unpack_from(buf, start)
        end = start + _HEAD.size + n_out + n_stop
        if len(buf) < end:
            break
        body = start + _HEAD.size
        output = bytes(buf[body : body + n_out])
        stop = json.loads(bytes(buf[body + n_out : end])) if n_stop else None
        w.done.append((output, stop))
        start = end
        if stop is not None:
            w.stopped = True
            break
    if start:
        del buf[:start]


def ordered_map(
    fn: Callable[[int, bytes], tuple[bytes, Any]],
    jobs: Iterable[tuple[int, bytes]],
    write: Callable[[bytes], None],
    *,
    workers: int,
    in_flight: int = 3,
) -> Any:
    """Run ``fn`` over ``jobs`` in ``workers`` forked processes; ``write`` the outputs in job order.

    Returns the first ``stop`` a job gave (its output, and every output before it, written), or
    ``None`` when every job ran. Raises ``RuntimeError`` if a worker dies.
    """
    pool = _fork(fn, workers)
    try:
        return _run(pool, iter(jobs), write, in_flight)
    finally:
        _end(pool)


def _run(pool: list[_Worker], jobs: Any, write: Callable[[bytes], None], in_flight: int) -> Any:
    order: deque[_Worker] = deque()  # which worker has each job in flight, in job order
    more = True
    while True:
        # Hand out jobs while some worker has room (the least busy first).
        while more:
            w = min(pool, key=lambda x: (x.stopped or x.closed, x.in_flight))
            if w.stopped or w.closed or w.in_flight >= in_flight:
                break
            job = next(jobs, None)
            if job is None:
                more = False
                break
            tag, data = job
            w.sending.append(memoryview(_HEAD.pack(tag, len(data))))
            if data:
                w.sending.append(memoryview(data))
            w.in_flight += 1
            order.append(w)
        # Write every output that is next in order.
        wrote = False
        while order and order[0].done:
            w = order.popleft()
            output, stop = w.done.popleft()
            w.in_flight -= 1
            wrote = True
            if output:
                write(output)
            if stop is not None:
                return stop
        if not order and not more:
            return None
        if wrote and more:
            continue  # room for more jobs: hand them out before waiting
        if not more:
            for w in pool:
                if not w.sending and w.jobs_w >= 0 and not w.stopped:
                    os.close(w.jobs_w)  # end of input: the worker exits when it reads this
                    w.jobs_w = -1
        _wait(pool)


def _wait(pool: list[_Worker]) -> None:
    """Block until some pipe can move bytes, then move them."""
    readers = {w.out_r: w for w in pool if w.in_flight > len(w.done) and not w.stopped}
    writers = {w.jobs_w: w for w in pool if w.sending and not w.stopped}
    if not readers and not writers:  # cannot happen while a job is in flight: never block forever
        raise RuntimeError("check workers: nothing left to wait for")
    poller = select.poll()  # not select(): no limit on descriptor numbers
    for fd in readers:
        poller.register(fd, select.POLLIN)
    for fd in writers:
        poller.register(fd, select.POLLOUT)
    for fd, _ in poller.poll():
        if fd in writers:
            _send(writers[fd])
        else:  # readable, or the worker's end closed (then the read gives b"")
            w = readers[fd]
            chunk = os.read(fd, _PIPE_SIZE)
            if not chunk:
                raise RuntimeError("a check worker ended unexpectedly")
            w.received += chunk
            _parse(w)


def _send(w: _Worker) -> None:
    while w.sending:
        part = w.sending[0]
        try:
            n = os.write(w.jobs_w, part)
        except BlockingIOError:
            return
        except BrokenPipeError:  # the worker has exited: after a stop (still to be read), or died
            w.sending.clear()
            w.closed = True
            return
        if n < len(part):
            w.sending[0] = part[n:]
            return
        w.sending.popleft()
