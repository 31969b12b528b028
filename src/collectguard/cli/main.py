"""The ``collectguard`` command line (DESIGN §7). Thin: parse, call one service, render.

Exit codes: 0 done (whatever a verdict says), 1 a check found a fault, 2 bad input.
Heavy modules (FastAPI, SQLAlchemy, the rule packs) are imported inside the commands that need
them, so that ``collectguard check`` starts fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from collectguard.cli import context
from collectguard.errors import CollectguardError

app = typer.Typer(
    name="collectguard",
    help="collectguard — 网贷合规催收平台 / compliance-first debt collection.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@app.callback()
def _global(
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", envvar="COLLECTGUARD_DATABASE_URL",
                     help="SQLAlchemy URL (default: sqlite:///collectguard.db in the working directory)"),
    ] = None,
) -> None:
    context.DATABASE_URL = database_url


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the database or migrate it to the latest schema."""
    from collectguard.adapters.db.engine import current_revision

    c = context.container()
    typer.echo(f"database at revision {current_revision(c.engine)}")


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8000)", min=1, max=65535)] = None,
    demo: Annotated[bool, typer.Option("--demo", help="seed demo data first when the database is empty, "
                                                       "then run today's daily run (queues, APRs)")] = False,
) -> None:
    """Run the web UI and HTTP API (creates the database if missing)."""
    import uvicorn

    from collectguard.api.app import create_app
    from collectguard.services.demo import demo_seed_if_empty

    c = context.container()
    if demo:
        created = demo_seed_if_empty(c)
        if created:
            typer.echo(f"demo data: {created}", err=True)
            from collectguard.services.daily import daily_run

            # A fresh demo opens on a filled work queue, as the morning after a daily run would.
            summary = daily_run(c, progress=context.progress_factory())
            typer.echo(f"daily run {summary['as_of']}: {summary['queue']} queued actions, "
                       f"{summary['cases_opened']} cases opened", err=True)
    settings = c.settings
    uvicorn.run(create_app(c), host=host or settings.host, port=port or settings.port,
                log_config=None, access_log=False)


@app.command("demo")
def demo(
    loans: Annotated[int, typer.Option(help="number of loans", min=1, max=20_000_000)] = 10_000,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same portfolio)")] = 42,
) -> None:
    """Seed a synthetic portfolio (Chinese names, test-range phone numbers)."""
    from collectguard.services.demo import demo_seed

    c = context.container()
    summary = demo_seed(c, loans=loans, seed=seed, progress=context.progress_factory())
    typer.echo(context.dumps(summary))


IMPORT_KINDS = ("borrowers", "loans", "installments", "payments", "contacts", "consents")


@app.command("import")
def import_(
    kind: Annotated[str, typer.Argument(help="borrowers|loans|installments|payments|contacts|consents")],
    path: Annotated[Path, typer.Argument(help="CSV file (UTF-8, with or without BOM)")],
    tenant: Annotated[str | None, typer.Option(help="tenant code (default: the settings' default)")] = None,
) -> None:
    """Import a CSV file; a file with any bad row imports nothing."""
    from collectguard.errors import BadInput
    from collectguard.services.importer import import_csv

    if kind not in IMPORT_KINDS:
        raise BadInput(f"unknown kind {kind!r}; expected one of {', '.join(IMPORT_KINDS)}", field="KIND")
    if not path.is_file():
        raise BadInput(f"no such file: {path}", field="PATH")
    c = context.container()
    result = import_csv(c, kind=kind, path=path, tenant_code=tenant or c.settings.default_tenant,
                        progress=context.progress_factory())
    typer.echo(context.dumps(result))


def _register_optional() -> None:
    """Commands contributed by feature modules (each exposes ``register(app)``)."""
    import importlib

    for name in context.FEATURE_COMMANDS:
        try:
            mod = importlib.import_module(f"collectguard.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"collectguard.cli.{name}":
                continue
            raise
        mod.register(app)


_register_optional()


def main(argv: list[str] | None = None) -> Any:
    """Entry point: runs the app and turns errors into one line on stderr and an exit code."""
    try:
        rv = app(args=argv, standalone_mode=False)
    except CollectguardError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        for err in exc.detail.get("errors", [])[:200]:
            typer.echo(f"  row {err.get('row')}, column {err.get('column')}: {err.get('reason')}", err=True)
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(0)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        # Typer vendors its own click; recognise its usage errors by shape rather than by class.
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        if type(exc).__name__ == "Abort":
            typer.echo("aborted", err=True)
            sys.exit(130)
        from pydantic import ValidationError
        from sqlalchemy.exc import DBAPIError

        if isinstance(exc, ValidationError) and exc.title == "Settings":
            # A bad COLLECTGUARD_* setting: name it (never echo its value: it may be a key).
            first = exc.errors()[0]
            name = " COLLECTGUARD_" + "_".join(str(x) for x in first["loc"]).upper() if first["loc"] else "s"
            typer.echo(f"error: bad setting{name}: {first['msg']}", err=True)
            sys.exit(2)
        if isinstance(exc, DBAPIError):
            # One line, without the SQL or its parameters (they may carry personal data).
            first = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
            typer.echo(f"error: the database is unavailable or refused the write: {first}", err=True)
            sys.exit(1)
        typer.echo(f"internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)
