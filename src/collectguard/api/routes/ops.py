"""Collection operations over HTTP: allocation (分案), holds (留案), stops (停催), complaints, approvals
(减免 / 分期 / 展期), repayment links and payments, message templates, legal actions, revealing a
number and the borrower's own contacts. Thin: parse, call one service, render.

Permissions (``services.authz``, docs/operations.md) are checked by the ``*_as`` services: allocation
``allocation.run``, holds ``hold.manage``, stops ``stop.manage``/``stop.lift``, approvals
``plan.request``/``approval.decide``, payments ``payment.record``, templates ``template.write``/
``template.approve``, legal actions ``legal_action.record``, contacts ``contact.write``.
``pages`` is the public repayment page ``/pay/{token}`` (no login: the signed token is the
credential), mounted without the API prefix.
"""

from __future__ import annotations

import datetime as dt
import html
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from collectguard.api.deps import ContainerDep, PrincipalDep
from collectguard.errors import NotFound
from collectguard.services import allocation, approvals, complaints, paylinks, reveal, stops, templates
from collectguard.services.authz import require
from collectguard.services.daily import daily_default_as_of

router = APIRouter(tags=["operations"])
pages = APIRouter(tags=["pages"])
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
_F = ConfigDict(extra="forbid")


class Model(BaseModel):
    model_config = _F


# ---------------------------------------------------------------- allocation and holds

@router.get("/allocation/rules", summary="The allocation rules in force (分案规则)")
def rules_read(c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    return allocation.allocation_rules_read_as(c, principal=p)


@router.put("/allocation/rules", summary="Save the tenant's allocation rules (a new version)")
def rules_save(body: dict[str, Any], c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    return allocation.allocation_rules_save_as(c, principal=p, body=body)


class DryRun(Model):
    rules: dict[str, Any] | None = Field(None, description="rules to try instead of the saved ones")


@router.post("/allocation/dry-run", summary="The distribution the rules would give (nothing is written)")
def allocate_dry_run(body: DryRun, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    return allocation.allocation_plan_as(c, principal=p, as_of=daily_default_as_of(c), rules=body.rules)


class Apply(Model):
    plan_sha256: str | None = Field(None, description="the dry run's; 409 if the plan changed since")


@router.post("/allocation/apply", summary="Apply the saved rules: assignments and audit records")
def allocate_apply(body: Apply, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    return allocation.allocation_apply_as(c, principal=p, as_of=daily_default_as_of(c),
                                          expect_plan_sha256=body.plan_sha256)


class Reason(Model):
    reason: str = Field(min_length=1, max_length=2000)


@router.post("/cases/{case_id}/hold", status_code=201, summary="Hold a case (留案): nobody holds it")
def hold(case_id: Id, body: Reason, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    return stops.case_hold_as(c, principal=p, case_id=case_id, reason=body.reason, on=daily_default_as_of(c))


@router.post("/cases/{case_id}/hold/release", summary="Release a held case to allocation")
def hold_release(case_id: Id, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    return stops.case_hold_release_as(c, principal=p, case_id=case_id)


# ---------------------------------------------------------------- stops and complaints

class StopIn(Model):
    reason: Literal[stops.STOP_REASONS]  # type: ignore[valid-type]
    scope: Literal["case", "number"] = "case"
    contact_id: int | None = Field(None, ge=1)
    phone: str | None = Field(None, max_length=40, description="a number in clear (number stops only)")
    starts_on: dt.date | None = None
    ends_on: dt.date | None = None
    note: str = Field("", max_length=2000)


@router.post("/cases/{case_id}/stops", status_code=201, summary="Stop collection (停催) on a case or a number")
def stop_create(case_id: Id, body: StopIn, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    return stops.stop_create_as(c, principal=p, case_id=case_id, on=daily_default_as_of(c), **body.model_dump())


@router.get("/cases/{case_id}/stops", summary="A case's stops, lifted or not")
def stops_list(case_id: Id, c: ContainerDep, p: PrincipalDep) -> list[dict[str, Any]]:
    return stops.stops_list_as(c, principal=p, case_id=case_id, on=daily_default_as_of(c))


class Note(Model):
    note: str = Field("", max_length=2000)


@router.post("/stops/{stop_id}/lift", summary="Lift a stop")
def stop_lift(stop_id: Id, body: Note, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    return stops.stop_lift_as(c, principal=p, stop_id=stop_id, note=body.note)


class ComplaintIn(Model):
    category: Literal[complaints.CATEGORIES]  # type: ignore[valid-type]
    text: str = Field(min_length=1, max_length=8000)
    channel: Literal[complaints.CHANNELS] = "portal"  # type: ignore[valid-type]
    ext_ref: str | None = Field(None, min_length=1, max_length=64)
    received_at: dt.datetime | None = None
    stop: bool = Field(False, description="stop collection on the case until the complaint is resolved")


@router.post("/cases/{case_id}/complaints", status_code=201, summary="File a complaint about a case")
def complaint_file(case_id: Id, body: ComplaintIn, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    return complaints.complaint_file_as(c, principal=p, case_id=case_id, on=daily_default_as_of(c),
                                        **body.model_dump())


@router.post("/complaints/import", summary="Import complaint tickets (CSV body, text/csv)")
async def complaints_import(request: Request, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    require(p, "complaint.resolve")
    text = (await request.body()).decode("utf-8", errors="replace")
    with c.uow() as s:
        return complaints.complaints_import_csv(s, tenant_id=p.tenant_id, text=text, actor=p.actor, now=c.clock())


@router.get("/complaints", summary="Complaints, newest first")
def complaints_list(c: ContainerDep, p: PrincipalDep, case_id: int | None = None,
                    status: Literal["open", "resolved"] | None = None) -> dict[str, Any]:
    return complaints.complaints_list_as(c, principal=p, case_id=case_id, status=status)


class Resolution(Model):
    resolution: str = Field(min_length=1, max_length=4000)


@router.post("/complaints/{complaint_id}/resolution", summary="Resolve a complaint (its stops are lifted)")
def complaint_resolve(complaint_id: Id, body: Resolution, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    return complaints.complaint_resolve_as(c, principal=p, complaint_id=complaint_id, resolution=body.resolution)


# ---------------------------------------------------------------- approvals

class ApprovalIn(Model):
    kind: Literal["waiver", "plan", "extension"]
    reason: str = Field(min_length=1, max_length=4000)
    amount: Decimal | None = Field(None, gt=0, max_digits=14, decimal_places=2, description="waiver")
    days: int | None = Field(None, ge=1, le=365, description="extension")
    schedule: list[dict[str, Any]] | None = Field(None, max_length=120, description="plan")
    waive_rest: bool = False


@router.post("/cases/{case_id}/approvals", status_code=201, summary="Ask for a waiver, plan or extension")
def approval_request(case_id: Id, body: ApprovalIn, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    return approvals.approval_request_as(c, principal=p, case_id=case_id, on=daily_default_as_of(c),
                                         **body.model_dump())


@router.get("/approvals", summary="Approval requests, newest first")
def approvals_list(c: ContainerDep, p: PrincipalDep, status: str | None = None,
                   case_id: int | None = None) -> list[dict[str, Any]]:
    return approvals.approvals_list_as(c, principal=p, status=status, case_id=case_id)


class DecisionIn(Model):
    approve: bool
    note: str = Field("", max_length=2000)


@router.post("/approvals/{request_id}/decision", summary="Approve or reject (never your own request)")
def approval_decide(request_id: Id, body: DecisionIn, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    return approvals.approval_decide_as(c, principal=p, request_id=request_id, approve=body.approve, note=body.note,
                                        on=daily_default_as_of(c))


# ---------------------------------------------------------------- repayment links and payments

class LinkIn(Model):
    ttl_hours: int = Field(72, ge=1, le=paylinks.MAX_TTL_HOURS)


@router.post("/cases/{case_id}/pay-links", status_code=201, summary="A signed repayment link and code")
def paylink_create(case_id: Id, body: LinkIn, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    return paylinks.paylink_create_as(c, principal=p, case_id=case_id, ttl_hours=body.ttl_hours)


class PaymentIn(Model):
    loan_id: int | None = Field(None, ge=1)
    loan_ref: str | None = Field(None, min_length=1, max_length=64, description="the lender's loan id")
    pay_code: str | None = Field(None, min_length=1, max_length=16)
    amount: Decimal = Field(gt=0, max_digits=14, decimal_places=2)
    paid_on: dt.date
    ext_ref: str | None = Field(None, max_length=64)


@router.post("/payments", status_code=201, summary="A payment reported by the lender's payment system")
def payment_record(body: PaymentIn, response: Response, c: ContainerDep, p: PrincipalDep,
                   idempotency_key: Annotated[str, Header(min_length=8, max_length=128)]) -> dict[str, Any]:
    """Idempotent per ``Idempotency-Key``: a replay answers 200 with the same payment."""
    out, created = paylinks.payment_record_as(c, principal=p, idempotency_key=idempotency_key, **body.model_dump())
    response.status_code = 201 if created else 200
    return out


# ---------------------------------------------------------------- templates and legal actions

class TemplateIn(Model):
    code: str = Field(min_length=1, max_length=64)
    language: Literal["zh", "en"]
    body: str = Field(min_length=1, max_length=2000)
    channel: Literal[templates.CHANNELS] = "sms"  # type: ignore[valid-type]
    jurisdiction: Literal["CN", "US", "EU"] = "CN"
    audience: Literal["debtor", "third_party"] = "debtor"


@router.post("/templates", status_code=201, summary="A new template version (draft)")
def template_create(body: TemplateIn, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    return templates.template_act_as(c, principal=p, action="create", **body.model_dump())


@router.get("/templates", summary="Template versions, newest first")
def templates_list(c: ContainerDep, p: PrincipalDep, code: str | None = None,
                   status: str | None = None) -> list[dict[str, Any]]:
    return templates.templates_list_as(c, principal=p, code=code, status=status)


@router.post("/templates/{template_id}/lint", summary="Lint a draft with the guard's lint")
def template_lint(template_id: Id, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    return templates.template_act_as(c, principal=p, action="lint", template_id=template_id)


@router.post("/templates/{template_id}/review", summary="Approve or reject a linted version (compliance)")
def template_review(template_id: Id, body: DecisionIn, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    return templates.template_act_as(c, principal=p, action="review", template_id=template_id,
                                     approve=body.approve, note=body.note)


class RenderIn(Model):
    variables: dict[str, str]
    case_id: int | None = Field(None, ge=1)


@router.post("/templates/{template_id}/render", summary="The text of an approved template")
def template_render(template_id: Id, body: RenderIn, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    return templates.template_render_as(c, principal=p, template_id=template_id, variables=body.variables,
                                        case_id=body.case_id)


class LegalIn(Model):
    kind: Literal["lawsuit", "arbitration"] = "lawsuit"
    filed_on: dt.date
    court: str = Field(min_length=1, max_length=200)
    case_number: str = Field(min_length=1, max_length=100)


@router.post("/cases/{case_id}/legal-actions", status_code=201, summary="Record a lawsuit or arbitration")
def legal_action(case_id: Id, body: LegalIn, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    return templates.legal_action_record_as(c, principal=p, case_id=case_id, **body.model_dump())


# ---------------------------------------------------------------- numbers: reveal, borrower's own contacts

class RevealIn(Model):
    reason: str = Field(min_length=1, max_length=500, description="why you need the number (audited)")


@router.post("/borrowers/{borrower_id}/phone/reveal", summary="The borrower's number in clear (reason audited)")
def reveal_borrower(borrower_id: Id, body: RevealIn, c: ContainerDep, p: PrincipalDep) -> dict[str, str]:
    return {"phone": reveal.reveal_phone(c, principal=p, borrower_id=borrower_id, reason=body.reason)}


@router.post("/contacts/{contact_id}/phone/reveal", summary="A contact's number in clear (reason audited)")
def reveal_contact(contact_id: Id, body: RevealIn, c: ContainerDep, p: PrincipalDep) -> dict[str, str]:
    return {"phone": reveal.reveal_phone(c, principal=p, contact_id=contact_id, reason=body.reason)}


class ContactIn(Model):
    name: str = Field(min_length=1, max_length=100)
    phone: str = Field(min_length=3, max_length=40)
    relation: str = Field(min_length=1, max_length=32)
    source: str = Field(reveal.ACCEPTED_SOURCE, max_length=32, description="only borrower_designated is accepted")


@router.post("/borrowers/{borrower_id}/contacts", status_code=201, summary="A contact the borrower designates")
def contact_add(borrower_id: Id, body: ContactIn, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    return reveal.contact_add_as(c, principal=p, borrower_id=borrower_id, **body.model_dump())


# ---------------------------------------------------------------- the public repayment page

_PAGE = {"zh": ("还款", "借款人", "当前应还", "剩余应还", "还款码", "链接有效期至", "链接无效或已过期。", "zh-CN"),
         "en": ("Repayment", "Borrower", "Due now", "Outstanding", "Repayment code", "Link valid until",
                "This link is not valid or has expired.", "en")}


@pages.get("/pay/{token}", response_class=HTMLResponse, include_in_schema=False)
def pay_page(token: Annotated[str, Path(max_length=200)], c: ContainerDep, lang: str = "zh") -> HTMLResponse:
    """Masked name, amount due, code and a note that payment happens in the lender's system."""
    t = _PAGE["en" if lang == "en" else "zh"]
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}  # the token is the credential
    try:
        info = paylinks.paylink_page(c, token=token, on=daily_default_as_of(c))
    except (NotFound, paylinks.PaylinkExpired) as exc:
        return HTMLResponse(_html(t, f"<p>{html.escape(t[6])}</p>"), status_code=410 if isinstance(
            exc, paylinks.PaylinkExpired) else 404, headers=headers)
    e = html.escape
    rows = [(t[1], info["name_masked"]), (t[2], f"{info['amount_due']} {info['currency']}"),
            (t[3], f"{info['outstanding']} {info['currency']}"), (t[4], info["code"]), (t[5], info["expires_at"])]
    body = (f"<h1>{e(info['lender'])} · {e(t[0])}</h1><dl class='facts'>"
            + "".join(f"<dt>{e(k)}</dt><dd>{e(str(v))}</dd>" for k, v in rows)
            + f"</dl><p>{e(info['note']['en' if lang == 'en' else 'zh'])}</p>")
    return HTMLResponse(_html(t, body), headers=headers)


def _html(t: tuple[str, ...], body: str) -> str:
    return (f"<!doctype html><html lang='{t[7]}'><head><meta charset='utf-8'><meta name='viewport' "
            f"content='width=device-width, initial-scale=1'><title>{html.escape(t[0])}</title>"
            "<link rel='stylesheet' href='/static/app.css'></head>"
            f"<body><main class='narrow'>{body}</main></body></html>")

