"""``collectguard daily``: the daily run (DPD, buckets, cases, PTPs, assignment, work queue)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer

from collectguard.cli import context


def _date(value: str | None) -> dt.date | None:
    from collectguard.errors import BadInput

    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadInput(f"expected a date as YYYY-MM-DD, got {value!r}", field="--as-of") from None


def _text(summary: dict[str, Any]) -> str:
    lines = [f"daily run {summary['as_of']}: {summary['loans']} loans in {summary['seconds']} s"]
    lines.append("  " + "  ".join(f"{k} {v}" for k, v in summary["buckets"].items()))
    lines.append(f"  cases opened {summary['cases_opened']}, closed {summary['cases_closed']}; "
                 f"PTP {', '.join(f'{k} {v}' for k, v in summary['ptp'].items())}")
    denied = sum(summary.get("queue_denied", {}).values())
    lines.append(f"  queue {summary['queue']} actions ({denied} denied by the guard and dropped)")
    for key, why in summary.get("queue_skipped", {}).items():
        lines.append(f"  no queue for {key}: {why}")
    return "\n".join(lines)


def daily(
    as_of: Annotated[str | None, typer.Option("--as-of", help="the date to run for, YYYY-MM-DD "
                                                               "(default: today in Asia/Shanghai)")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print the summary as one JSON object")] = False,
    force: Annotated[bool, typer.Option("--force", help="recompute a date that already ran "
                                                         "(e.g. after importing late payments)")] = False,
) -> None:
    """Run the daily run; idempotent per date, resumable after a crash."""
    from collectguard.services.daily import daily_run

    day = _date(as_of)
    c = context.container()
    summary = daily_run(c, as_of=day, force=force, progress=context.progress_factory())
    typer.echo(context.dumps(summary) if json_out else _text(summary))


def register(app: typer.Typer) -> None:
    """Add ``daily`` to the ``collectguard`` command line."""
    app.command("daily")(daily)
