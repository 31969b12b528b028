"""``collectguard allocate``, ``stop`` and ``templates``: collection operations from the command line.

    collectguard allocate --dry-run [--rules rules.yaml]     # the distribution, nothing written
    collectguard allocate --apply [--rules rules.yaml] [--expect SHA]
    collectguard stop add --case 12 --reason complaint [--number borrower|contact:7|+8613800138000]
    collectguard stop lift 5 / collectguard stop list --case 12
    collectguard templates create --code m1 --language zh --body "…" / lint ID / approve ID / reject ID / list
    collectguard complaints import tickets.csv

The CLI acts as the operator at the console (``cli:<user>``); the maker-checker rules still apply to
it (the author of a template cannot approve it). Output is JSON on stdout; exit 2 on bad input.
"""

from __future__ import annotations

import datetime as dt
import getpass
from pathlib import Path
from typing import Annotated, Any

import typer

from collectguard.cli import context

stop_app = typer.Typer(help="Stop collection (停催) on a case or one number.", no_args_is_help=True)
templates_app = typer.Typer(help="Message templates: draft, lint, approve (合规审核).", no_args_is_help=True)
complaints_app = typer.Typer(help="Complaint tickets (投诉工单).", no_args_is_help=True)

_TENANT = typer.Option("--tenant", help="tenant code (default: the settings' default)")
_DATE = typer.Option(help="YYYY-MM-DD (default: today in Asia/Shanghai)")


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry in some containers
        return "cli"


def _date(value: str | None, field: str) -> dt.date | None:
    from collectguard.errors import BadInput

    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        raise BadInput(f"expected YYYY-MM-DD, got {value!r}", field=field) from None


def _tenant_id(s: Any, code: str) -> int:
    from sqlalchemy import select

    from collectguard.adapters.db.models import Tenant
    from collectguard.errors import NotFound

    tid = s.scalar(select(Tenant.id).where(Tenant.code == code))
    if tid is None:
        raise NotFound(f"no tenant {code!r}")
    return int(tid)


def _yaml(path: Path) -> dict[str, Any]:
    import yaml

    from collectguard.errors import BadInput

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise BadInput(f"cannot read the rules: {exc}", field="--rules") from None
    if not isinstance(data, dict):
        raise BadInput("the rules file must hold a mapping", field="--rules")
    return data


def allocate(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show the resulting distribution, write nothing")] = False,
    apply: Annotated[bool, typer.Option("--apply", help="write the assignments (audited)")] = False,
    rules: Annotated[Path | None, typer.Option("--rules", help="a rules YAML (with --apply it is saved first)")] = None,
    expect: Annotated[str | None, typer.Option("--expect", help="the dry run's plan_sha256 (refused if the "
                                                                "plan changed)")] = None,
    tenant: Annotated[str | None, _TENANT] = None,
    as_of: Annotated[str | None, _DATE] = None,
) -> None:
    """Allocate open cases (分案) to collectors and agencies by the rules."""
    from collectguard.errors import BadInput
    from collectguard.services import allocation
    from collectguard.services.daily import daily_default_as_of

    if dry_run == apply:
        raise BadInput("give exactly one of --dry-run and --apply", field="--dry-run")
    c = context.container()
    day = _date(as_of, "--as-of") or daily_default_as_of(c)
    body = _yaml(rules) if rules else None
    with c.uow(write=apply) as s:
        tid = _tenant_id(s, tenant or c.settings.default_tenant)
        if dry_run:
            out = allocation.allocation_plan(s, tenant_id=tid, as_of=day, rules=body)
        else:
            if body is not None:
                allocation.allocation_rules_save(s, tenant_id=tid, body=body, actor=_actor(), now=c.clock())
            out = allocation.allocation_apply(s, tenant_id=tid, as_of=day, actor=_actor(), now=c.clock(),
                                              expect_plan_sha256=expect)
    typer.echo(context.dumps(out))


@stop_app.command("add")
def stop_add(
    case: Annotated[int, typer.Option("--case", help="the case id")],
    reason: Annotated[str, typer.Option(help="complaint, dispute, fraud, litigation, deceased, hardship")],
    number: Annotated[str | None, typer.Option(help="stop one number: 'borrower', 'contact:<id>' or a phone "
                                                    "number; default: the whole case")] = None,
    start: Annotated[str | None, typer.Option("--from", help="first day (default today)")] = None,
    end: Annotated[str | None, typer.Option("--to", help="last day (default: until lifted)")] = None,
    note: Annotated[str, typer.Option(help="why, for the record")] = "",
    tenant: Annotated[str | None, _TENANT] = None,
) -> None:
    """Stop collection; the guard denies while the stop is active."""
    from collectguard.services.daily import daily_default_as_of
    from collectguard.services.stops import stop_create, stop_view

    c = context.container()
    kw: dict[str, Any] = {"scope": "number" if number else "case"}
    if number and number.startswith("contact:"):
        kw["contact_id"] = int(number.split(":", 1)[1]) if number.split(":", 1)[1].isdigit() else -1
    elif number and number != "borrower":
        kw["phone"] = number
    today = daily_default_as_of(c)
    with c.uow() as s:
        row = stop_create(s, cipher=c.cipher, tenant_id=_tenant_id(s, tenant or c.settings.default_tenant),
                          case_id=case, reason=reason, starts_on=_date(start, "--from") or today,
                          ends_on=_date(end, "--to"), note=note, actor=_actor(), now=c.clock(), **kw)
        typer.echo(context.dumps(stop_view(row, on=today)))


@stop_app.command("lift")
def stop_lift(stop_id: int, note: Annotated[str, typer.Option()] = "",
              tenant: Annotated[str | None, _TENANT] = None) -> None:
    """Lift a stop now."""
    from collectguard.services.stops import stop_lift as lift
    from collectguard.services.stops import stop_view

    c = context.container()
    with c.uow() as s:
        row = lift(s, tenant_id=_tenant_id(s, tenant or c.settings.default_tenant), stop_id=stop_id, actor=_actor(),
                   now=c.clock(), note=note)
        typer.echo(context.dumps(stop_view(row)))


@stop_app.command("list")
def stop_list(case: Annotated[int, typer.Option("--case")], tenant: Annotated[str | None, _TENANT] = None) -> None:
    """The stops of a case (exit 2 for a case of another tenant)."""
    from collectguard.adapters.db.models import Case
    from collectguard.errors import NotFound
    from collectguard.services.daily import daily_default_as_of
    from collectguard.services.stops import stop_view, stops_of_case

    c = context.container()
    with c.uow(write=False) as s:
        row = s.get(Case, case)
        if row is None or row.tenant_id != _tenant_id(s, tenant or c.settings.default_tenant):
            raise NotFound("no such case")
        typer.echo(context.dumps([stop_view(r, on=daily_default_as_of(c)) for r in stops_of_case(s, case_id=case)]))


@templates_app.command("create")
def template_create(
    code: Annotated[str, typer.Option()], language: Annotated[str, typer.Option(help="zh or en")],
    body: Annotated[str, typer.Option(help="the text, with {name_masked} {amount} {due_date} … variables")],
    channel: Annotated[str, typer.Option()] = "sms", jurisdiction: Annotated[str, typer.Option()] = "CN",
    audience: Annotated[str, typer.Option(help="debtor or third_party")] = "debtor",
    tenant: Annotated[str | None, _TENANT] = None,
) -> None:
    """A new draft version of a template."""
    _template("create", tenant, code=code, language=language, body=body, channel=channel,
              jurisdiction=jurisdiction, audience=audience)


@templates_app.command("lint")
def template_lint(template_id: int, tenant: Annotated[str | None, _TENANT] = None) -> None:
    """Lint a draft with the guard's lint."""
    _template("lint", tenant, template_id=template_id)


@templates_app.command("approve")
def template_approve(template_id: int, note: Annotated[str, typer.Option()] = "",
                     tenant: Annotated[str | None, _TENANT] = None) -> None:
    """Approve a linted version (not your own)."""
    _template("review", tenant, template_id=template_id, approve=True, note=note)


@templates_app.command("reject")
def template_reject(template_id: int, note: Annotated[str, typer.Option()] = "",
                    tenant: Annotated[str | None, _TENANT] = None) -> None:
    """Reject a linted version."""
    _template("review", tenant, template_id=template_id, approve=False, note=note)


def _template(action: str, tenant: str | None, **kw: Any) -> None:
    from collectguard.services import templates as t

    c = context.container()
    with c.uow() as s:
        common = {"tenant_id": _tenant_id(s, tenant or c.settings.default_tenant), "now": c.clock()}
        if action == "create":
            row = t.template_create(s, actor=_actor(), **common, **kw)
        elif action == "lint":
            row = t.template_lint(s, actor=_actor(), **common, **kw)
        else:
            row = t.template_review(s, reviewer=_actor(), **common, **kw)
        typer.echo(context.dumps(t.template_view(row)))


@templates_app.command("list")
def templates_list(code: Annotated[str | None, typer.Option()] = None,
                   tenant: Annotated[str | None, _TENANT] = None) -> None:
    """Every version, newest first."""
    from sqlalchemy import select

    from collectguard.adapters.db.models_ops import MessageTemplate
    from collectguard.services.templates import template_view

    c = context.container()
    with c.uow(write=False) as s:
        stmt = select(MessageTemplate).where(MessageTemplate.tenant_id == _tenant_id(
            s, tenant or c.settings.default_tenant))
        if code:
            stmt = stmt.where(MessageTemplate.code == code)
        rows = s.scalars(stmt.order_by(MessageTemplate.code, MessageTemplate.version.desc()))
        typer.echo(context.dumps([template_view(r) for r in rows]))


@complaints_app.command("import")
def complaints_import(path: Path, tenant: Annotated[str | None, _TENANT] = None) -> None:
    """Import complaint tickets from CSV (all-or-nothing; known refs are skipped)."""
    from collectguard.errors import BadInput
    from collectguard.services.complaints import complaints_import_csv

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read {path}: {exc}", field="PATH") from None
    c = context.container()
    with c.uow() as s:
        out = complaints_import_csv(s, tenant_id=_tenant_id(s, tenant or c.settings.default_tenant), text=text,
                                    actor=_actor(), now=c.clock())
    typer.echo(context.dumps(out))


def register(app: typer.Typer) -> None:
    """Add ``allocate``, ``stop``, ``templates`` and ``complaints`` to the command line."""
    app.command("allocate")(allocate)
    app.add_typer(stop_app, name="stop")
    app.add_typer(templates_app, name="templates")
    app.add_typer(complaints_app, name="complaints")
