"""``collectguard audit``: verify the chains, sign checkpoints, export and verify evidence bundles."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer

from collectguard.cli import context

audit_app = typer.Typer(help="Tamper-evident audit trail: verify, checkpoint, export evidence.", no_args_is_help=True)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry in some containers
        return "cli"


@audit_app.command("verify")
def verify(
    chain: Annotated[str | None, typer.Option(help="verify only this chain (default: all)")] = None,
    workers: Annotated[int | None, typer.Option(help="worker processes (default: one per CPU)", min=1)] = None,
) -> None:
    """Recompute every chain; exit 1 naming the chain and the first broken seq when tampered with."""
    from collectguard.errors import IntegrityFault
    from collectguard.services.audit_verify import audit_verify_report

    report = audit_verify_report(context.container(), chain=chain, workers=workers)
    typer.echo(context.dumps(report))
    if report["faults"]:
        f = report["faults"][0]
        raise IntegrityFault(f"audit chain {f['chain']} broken at seq {f['seq']}: {f['reason']}", detail=report)


@audit_app.command("checkpoint")
def checkpoint() -> None:
    """Sign a checkpoint at every chain's head now (and any missed every-1000 boundary)."""
    from collectguard.services.audit_signing import audit_checkpoint_run

    c = context.container()
    typer.echo(context.dumps(audit_checkpoint_run(c, now=c.clock())))


@audit_app.command("export")
def export(
    borrower: Annotated[str, typer.Option("--borrower", help="the borrower's external id (borrower_id)")],
    out: Annotated[Path, typer.Option("--out", help="the bundle to write (a .zip)")],
    tenant: Annotated[str | None, typer.Option(help="tenant code (default: the settings' default)")] = None,
) -> None:
    """Write the evidence bundle about one borrower (records, decisions, chain proof, report)."""
    from collectguard.services.evidence import audit_export

    c = context.container()
    typer.echo(
        context.dumps(
            audit_export(c, borrower_ext_id=borrower, tenant_code=tenant, out=out, actor=_actor(), now=c.clock())
        )
    )


@audit_app.command("verify-bundle")
def verify_bundle(
    bundle: Annotated[Path, typer.Argument(help="an evidence bundle (.zip) from `audit export`")],
    key_id: Annotated[str | None, typer.Option(help="the signing key's published fingerprint")] = None,
) -> None:
    """Verify an evidence bundle offline: no database is opened."""
    from collectguard.services.evidence_verify import verify_bundle as verify

    typer.echo(context.dumps(verify(bundle, key_id=key_id)))


def register(app: typer.Typer) -> None:
    """Add the ``audit`` sub-app to the main CLI."""
    app.add_typer(audit_app, name="audit")
