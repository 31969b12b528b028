"""``collectguard retention run``: anonymise personal data whose retention period has run out."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from collectguard.cli import context

retention_app = typer.Typer(
    help="Retention: erase expired personal data, keep the audit chain verifiable.", no_args_is_help=True
)


@retention_app.command("run")
def run(
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="the date to judge expiry on, YYYY-MM-DD (default: today, UTC)"),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report what would be erased; change nothing")] = False,
) -> None:
    """Anonymise expired borrowers' personal data (audit payloads become redaction markers)."""
    from collectguard.errors import BadInput
    from collectguard.services.retention import retention_run

    c = context.container()
    now = c.clock()
    try:
        day = dt.date.fromisoformat(as_of) if as_of else now.date()
    except ValueError as exc:
        raise BadInput(f"not a date: {as_of!r}", field="--as-of") from exc
    typer.echo(context.dumps(retention_run(c, as_of=day, now=now, dry_run=dry_run)))


def register(app: typer.Typer) -> None:
    """Add the ``retention`` sub-app to the main CLI."""
    app.add_typer(retention_app, name="retention")
