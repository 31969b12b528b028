"""The ordered parallel map under ``collectguard check``: order, stops and dead workers."""

from __future__ import annotations

import os
from typing import Any

import pytest

from collectguard.cli._forkmap import ordered_map

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")


def jobs(n: int) -> list[tuple[int, bytes]]:
    # Sizes from empty to well over a pipe's capacity, so frames arrive in many pieces.
    return [(i, bytes([65 + i % 26]) * ((i * 7919) % 3_000_000 if i % 5 else 0)) for i in range(n)]


def run(fn: Any, n: int, **kw: Any) -> tuple[list[bytes], Any]:
    out: list[bytes] = []
    stop = ordered_map(fn, jobs(n), out.append, **kw)
    return out, stop


def echo(tag: int, data: bytes) -> tuple[bytes, Any]:
    return f"{tag}:".encode() + data.lower(), None


@pytest.mark.parametrize(("workers", "in_flight"), [(1, 1), (2, 3), (3, 1), (4, 2)])
def test_outputs_come_in_job_order(workers: int, in_flight: int) -> None:
    out, stop = run(echo, 23, workers=workers, in_flight=in_flight)
    assert stop is None
    assert out == [f"{i}:".encode() + d.lower() for i, d in jobs(23)]


def test_a_stop_ends_the_map_after_its_own_output() -> None:
    def fn(tag: int, data: bytes) -> tuple[bytes, Any]:
        return f"{tag}".encode(), (["bad", tag, None] if tag in (7, 9) else None)

    out, stop = run(fn, 20, workers=3)
    assert out == [f"{i}".encode() for i in range(8)] and stop == ["bad", 7, None]


def test_nothing_to_do_and_empty_outputs() -> None:
    assert run(echo, 0, workers=2) == ([], None)
    out, stop = run(lambda tag, data: (b"", None), 5, workers=2)
    assert out == [] and stop is None


@pytest.mark.parametrize("how", ["exit", "raise"])
def test_a_worker_that_dies_is_an_error_not_a_hang(how: str, capfd: pytest.CaptureFixture[str]) -> None:
    def fn(tag: int, data: bytes) -> tuple[bytes, Any]:
        if tag == 4:
            if how == "exit":
                os._exit(3)
            raise ValueError("boom")
        return b"x", None

    with pytest.raises(RuntimeError, match="worker"):
        run(fn, 12, workers=2)
    if how == "raise":
        assert "ValueError: boom" in capfd.readouterr().err


def test_a_stop_while_jobs_are_still_being_sent_is_not_a_dead_worker() -> None:
    # The stopping worker exits with big jobs for it still on their way: writing them fails,
    # which must not be mistaken for a crash.
    def fn(tag: int, data: bytes) -> tuple[bytes, Any]:
        return b"", (tag if tag == 1 else None)

    big = [(i, b"x" * 2_500_000) for i in range(12)]
    for _ in range(25):  # a race: each round gives it another chance to show
        assert ordered_map(fn, big, lambda b: None, workers=2, in_flight=3) == 1
