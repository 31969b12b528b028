"""``collectguard costs``: the true APR of every loan and the loans above their legal cost cap."""

from __future__ import annotations

from typing import Annotated

import typer

from collectguard.cli import context

costs_app = typer.Typer(help="Cost of credit: price every loan (APR), list loans above their legal cap.",
                        no_args_is_help=True)


@costs_app.command("price")
def price(
    json_out: Annotated[bool, typer.Option("--json", help="print the counts as one JSON object")] = False,
) -> None:
    """Compute the APR (Appendix J) of every loan that has none yet; idempotent.

    The daily run prices private and unlicensed loans itself (their APR is what the guard judges);
    this prices the rest too, e.g. for the over-cap report and the 24% reference warning.
    """
    from collectguard.services.costs import loan_apr_run

    counts = loan_apr_run(context.container(), progress=context.progress_factory())
    if json_out:
        typer.echo(context.dumps(counts))
    else:
        typer.echo(f"priced {counts['loans'] - counts['unavailable']} of {counts['loans']} loans "
                   f"({counts['vectorised']} vectorised, {counts['scalar']} one by one); "
                   f"{counts['unavailable']} without a computable APR")


@costs_app.command("over-cap")
def over_cap(
    tenant: Annotated[str, typer.Option("--tenant", help="the lender's tenant code")],
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="at most this many loans")] = 100,
) -> None:
    """Loans above their cap (private/unlicensed above 4 x LPR, unlicensed above 36%) as JSON Lines,
    each with its verdict, citations and the claimable interest."""
    from collectguard.services.authz import Principal
    from collectguard.services.costs import loans_over_cap
    from collectguard.services.tenancy import tenant_get

    c = context.container()
    with c.uow(write=False) as s:
        tid = tenant_get(s, tenant).id
    p = Principal(tenant_id=tid, tenant_code=tenant, role="compliance_officer", user_id=None, token_id=None)
    for item in loans_over_cap(c, principal=p, limit=limit)["items"]:
        typer.echo(context.dumps(item))


def register(app: typer.Typer) -> None:
    """Add ``costs`` to the ``collectguard`` command line."""
    app.add_typer(costs_app, name="costs")
