"""``collectguard outbox``: relay the transactional outbox to the broker, consume it, show its state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from collectguard.cli import context

if TYPE_CHECKING:
    from collectguard.bootstrap import Container


def _container() -> Container:
    """The container, with structured logs at the configured level (the jobs log their failures)."""
    from collectguard.adapters.logging import configure_logging

    c = context.container()
    configure_logging(c.settings.log_level, json=c.settings.log_json)
    return c


outbox_app = typer.Typer(help="Transactional outbox: channel sends (SMS, e-mail, IM) to the broker.",
                         no_args_is_help=True)


@outbox_app.command("relay")
def relay(
    once: Annotated[bool, typer.Option("--once", help="drain what is pending now and exit")] = False,
    interval: Annotated[float, typer.Option(help="seconds to wait when the outbox is empty", min=0.05)] = 1.0,
    batch: Annotated[int, typer.Option(help="messages claimed per batch", min=1, max=10_000)] = 200,
) -> None:
    """Publish pending messages to RabbitMQ (COLLECTGUARD_BROKER_URL), each confirmed before it is
    marked sent; without a broker, deliver them in process. Runs until interrupted unless --once."""
    from collectguard.jobs.outbox_relay import relay as run

    typer.echo(context.dumps(run(_container(), once=once, interval=interval, limit=batch)))


@outbox_app.command("consume")
def consume(
    kind: Annotated[list[str] | None, typer.Option("--kind", help="sms, email or im (repeatable; default all)")] = None,
    max_messages: Annotated[int | None, typer.Option("--max", help="stop after this many messages", min=1)] = None,
    idle_timeout: Annotated[float | None, typer.Option(help="stop after this many idle seconds")] = None,
) -> None:
    """Deliver messages from RabbitMQ (e-mail through COLLECTGUARD_SMTP_URL), each at most once."""
    from collectguard.errors import BadInput
    from collectguard.jobs.outbox_relay import consume as run
    from collectguard.services.outbox import OUTBOX_KINDS

    bad = [k for k in kind or () if k not in OUTBOX_KINDS]
    if bad:
        raise BadInput(f"unknown kind {bad[0]!r}; expected one of {', '.join(OUTBOX_KINDS)}", field="--kind")
    result = run(_container(), kinds=kind or None, max_messages=max_messages, idle_timeout=idle_timeout)
    typer.echo(context.dumps(result))


@outbox_app.command("purge")
def purge(
    days: Annotated[int, typer.Option(help="keep messages sent within this many days", min=1)] = 7,
) -> None:
    """Delete sent messages and dedupe records older than --days (message bodies are personal data)."""
    import datetime as dt

    from collectguard.services.outbox import outbox_purge

    c = context.container()
    typer.echo(context.dumps(outbox_purge(c, older_than=dt.timedelta(days=days), now=c.clock())))


@outbox_app.command("status")
def status() -> None:
    """Pending and sent messages, and what each consumer has delivered."""
    from collectguard.services.outbox import outbox_stats

    typer.echo(context.dumps(outbox_stats(context.container())))


def register(app: typer.Typer) -> None:
    """Add ``outbox`` to the ``collectguard`` command line."""
    app.add_typer(outbox_app, name="outbox")
