"""Shared CLI state: the global options and the lazily built container."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collectguard.bootstrap import Container

DATABASE_URL: str | None = None
_CONTAINER: Container | None = None

# Feature modules under collectguard.cli that contribute commands via register(app).
FEATURE_COMMANDS = ("check", "apr", "assess", "daily", "audit", "accounts", "clauses", "qa", "consents",
                    "retention", "outbox", "ops", "keys", "costs")


def container() -> Container:
    """The process's container, built on first use (migrates the database)."""
    global _CONTAINER
    if _CONTAINER is None:
        from collectguard.bootstrap import build
        from collectguard.settings import Settings

        overrides: dict[str, Any] = {}
        if DATABASE_URL:
            overrides["database_url"] = DATABASE_URL
        _CONTAINER = build(Settings(**overrides))
    return _CONTAINER


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)


def progress_factory() -> Callable[[str, int], Any]:
    """Returns ``start(description, total) -> advance(n)``, a Rich progress bar on a terminal's stderr."""
    import sys

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        def quiet(description: str, total: int) -> Callable[[int], None]:
            return lambda n: None
        return quiet

    progress = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                        TimeRemainingColumn(), console=console, transient=False)

    def start(description: str, total: int) -> Callable[[int], None]:
        if not progress.live.is_started:
            progress.start()
        task = progress.add_task(description, total=total)

        def advance(n: int) -> None:
            progress.advance(task, n)
            if progress.tasks[task].finished and all(t.finished for t in progress.tasks):
                progress.stop()
                sys.stderr.flush()

        return advance

    return start
