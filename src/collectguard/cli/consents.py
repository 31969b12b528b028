"""``collectguard consents``: a borrower's consent ledger — list it, withdraw a kind (PIPL 15).

A withdrawal takes effect on the very next guard decision; withdrawing ``contact_list`` also erases
the borrower's stored contact-list contacts (PIPL 47). Output is JSON on stdout.
"""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from collectguard.cli import context

consents_app = typer.Typer(help="Consent ledger (同意记录): list, withdraw.", no_args_is_help=True)

_BORROWER = typer.Option("--borrower", help="the borrower's external id (borrower_id of the import)")
_TENANT = typer.Option(help="tenant code (default: the settings' default)")


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry in some containers
        return "cli"


@consents_app.command("list")
def list_(borrower: Annotated[str, _BORROWER], tenant: Annotated[str | None, _TENANT] = None) -> None:
    """Every consent of the borrower, given and withdrawn, oldest first."""
    from collectguard.services.consents import borrower_by_ext, consent_view, consents_of

    c = context.container()
    code = tenant or c.settings.default_tenant
    with c.uow(write=False) as s:
        b = borrower_by_ext(s, tenant_code=code, ext_id=borrower)
        rows = [consent_view(r) for r in consents_of(s, borrower_id=b.id)]
    typer.echo(context.dumps({"tenant": code, "borrower": borrower, "consents": rows}))


@consents_app.command("withdraw")
def withdraw(
    borrower: Annotated[str, _BORROWER],
    kind: Annotated[str, typer.Option("--kind", help="contact_list, third_party_contact, agreed_hours, …")],
    tenant: Annotated[str | None, _TENANT] = None,
) -> None:
    """Withdraw every consent of KIND in force for the borrower (exit 2 when there is none)."""
    from collectguard.services.consents import borrower_by_ext, consent_withdraw_kind

    c = context.container()
    code = tenant or c.settings.default_tenant
    with c.uow() as s:
        b = borrower_by_ext(s, tenant_code=code, ext_id=borrower)
        out = consent_withdraw_kind(s, cipher=c.cipher, borrower_id=b.id, kind=kind, actor=_actor(),
                                    now=c.clock())
    typer.echo(context.dumps({"tenant": code, "borrower": borrower, **out}))


def register(app: typer.Typer) -> None:
    """Add the ``consents`` sub-app to the main CLI."""
    app.add_typer(consents_app, name="consents")
