"""``collectguard user …`` and ``collectguard token …`` (DESIGN §7): accounts from the command line.

``token create`` prints only the bearer token on stdout, so ``TOKEN=$(collectguard token create …)``
works; what else there is to say (id, expiry) goes to stderr.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from collectguard.cli import context

user_app = typer.Typer(help="Users (argon2 password hashes).", no_args_is_help=True)
token_app = typer.Typer(help="API bearer tokens (only their SHA-256 is stored).", no_args_is_help=True)

ROLE_HELP = "admin|compliance_officer|team_lead|collector|agency_collector|auditor|borrower"


def _actor() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (containers)
        return "cli"


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        # The first line, without its line ending: `printf '%s\n' "$PW" | collectguard user create …`.
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True))


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Option(help="login name (unique)")],
    role: Annotated[str, typer.Option(help=ROLE_HELP)],
    tenant: Annotated[str | None, typer.Option(help="tenant code (default: the settings' default)")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin",
                                                 help="read the password from stdin")] = False,
    create_tenant: Annotated[bool, typer.Option("--create-tenant",
                                                help="create the tenant if missing")] = False,
    tenant_kind: Annotated[str, typer.Option(help="kind of a tenant created here: lender|agency")] = "lender",
    borrower: Annotated[str | None, typer.Option(help="borrower id in the tenant (role borrower)")] = None,
    display_name: Annotated[str, typer.Option(help="name shown in the UI")] = "",
) -> None:
    """Create a user and print its id. Passwords need at least 10 characters."""
    from collectguard.services.accounts import password_check
    from collectguard.services.accounts import user_create as create
    from collectguard.services.authz import role_validate

    role_validate(role)  # before asking for a password that would then be refused
    password = _read_password(password_stdin)
    password_check(password, username=username)
    c = context.container()
    with c.uow() as s:
        user = create(s, tenant_code=tenant or c.settings.default_tenant, username=username, role=role,
                      password=password, create_tenant=create_tenant, tenant_kind=tenant_kind,
                      borrower_ext_id=borrower, display_name=display_name, actor=_actor(), now=c.clock())
        user_id = user.id
    typer.echo(user_id)


@user_app.command("disable")
def user_disable(username: Annotated[str, typer.Option(help="login name")]) -> None:
    """Deactivate a user and revoke all their tokens and sessions."""
    from collectguard.services.accounts import user_disable as disable

    c = context.container()
    with c.uow() as s:
        user = disable(s, username=username, actor=_actor(), now=c.clock())
        user_id = user.id
    typer.echo(user_id)


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help=ROLE_HELP)],
    tenant: Annotated[str | None, typer.Option(help="tenant code (default: the settings' default)")] = None,
    user: Annotated[str | None, typer.Option(help="username the token acts for (same role)")] = None,
    expires_days: Annotated[int, typer.Option(help="days until the token expires (1-3650)")] = 90,
    label: Annotated[str, typer.Option(help="a note to recognise the token by")] = "",
) -> None:
    """Print a new bearer token for the API on stdout (shown once; only its hash is kept)."""
    from collectguard.services.accounts import token_create as create
    from collectguard.services.authz import role_validate

    role_validate(role)
    c = context.container()
    with c.uow() as s:
        row, raw = create(s, tenant_code=tenant or c.settings.default_tenant, role=role, username=user,
                          expires_days=expires_days, label=label, actor=_actor(), now=c.clock())
        info = f"token id {row.id}, role {row.role}, expires {row.expires_at:%Y-%m-%d %H:%M} UTC"
    typer.echo(info, err=True)
    typer.echo(raw)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int | None, typer.Argument(help="the id shown by token create / list")] = None,
    token_stdin: Annotated[bool, typer.Option("--token-stdin", help="read the token from stdin")] = False,
) -> None:
    """Revoke a token by id, or by the token itself read from stdin."""
    from sqlalchemy import select

    from collectguard.adapters.db.models import ApiToken
    from collectguard.errors import BadInput, NotFound
    from collectguard.services.accounts import token_hash
    from collectguard.services.accounts import token_revoke as revoke

    if (token_id is None) == (not token_stdin):
        raise BadInput("give a TOKEN_ID or --token-stdin (one of them)", field="TOKEN_ID")
    c = context.container()
    with c.uow() as s:
        if token_id is None:
            digest = token_hash(sys.stdin.readline().strip())
            found = s.scalar(select(ApiToken.id).where(ApiToken.token_hash == digest))
            if found is None:
                raise NotFound("no such token", detail={"field": "token"})
            token_id = int(found)
        row = revoke(s, token_id=token_id, actor=_actor(), now=c.clock())
        typer.echo(f"token {row.id} revoked at {row.revoked_at:%Y-%m-%d %H:%M} UTC", err=True)


@token_app.command("list")
def token_list(
    tenant: Annotated[str | None, typer.Option(help="tenant code (default: the settings' default)")] = None,
) -> None:
    """List a tenant's tokens as JSON Lines (never the tokens themselves)."""
    from collectguard.services.accounts import token_list as list_tokens

    c = context.container()
    with c.uow(write=False) as s:
        for row in list_tokens(s, tenant_code=tenant or c.settings.default_tenant):
            typer.echo(context.dumps({"id": row.id, "role": row.role, "user_id": row.user_id,
                                      "label": row.label,
                                      "created_at": row.created_at, "expires_at": row.expires_at,
                                      "revoked_at": row.revoked_at}))


def register(app: typer.Typer) -> None:
    """Add the ``user`` and ``token`` command groups to the CLI."""
    app.add_typer(user_app, name="user")
    app.add_typer(token_app, name="token")
