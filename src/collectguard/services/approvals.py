"""Waivers (减免), payment plans (分期) and term extensions (展期) under maker-checker.

A request is made (``approval_request``: by a collector, a team lead or the borrower) and decided
(``approval_decide``) by someone else holding ``approval.decide`` whose role's limit covers it — the
limits are data (``policy/allocation/approvals.yaml``); a decision beyond them is refused with the
roles it must be escalated to. Every step is audited; ``effect`` keeps exactly what changed.

How an approval changes what the borrower owes, and what the daily run then sees:
- **waiver**: the loan's unpaid installment amounts are reduced by the waived amount, latest
  installment first and charges before principal (fees, then interest, then principal). The
  daily run computes dues − payments, so the outstanding and overdue amounts fall at its next run;
  taking the latest installments first means a waiver alone does not cure arrears (DPD stays with
  the oldest unpaid installment) unless it clears the whole balance — then the loan closes and
  its case closes ``paid``. Waivers are not payments: recoveries, promises and plans never count
  them.
- **extension**: every installment not yet covered by payments falls due ``days`` later, so DPD
  and bucket are re-aged at the next run (bucket history records the move).
- **plan**: an ``active`` payment plan (``services.outcomes``: ``plan_installment`` rows, the case
  paused, settled by the daily run from payments). The contractual schedule is not re-aged. A plan
  for less than the balance needs ``waive_rest``: the difference is waived as above, within the
  checker's waiver limit, so the loan closes when the plan is paid.

The ledger's plan endpoints (``POST /cases/{id}/plans``, ``POST /plans/{id}/decision``) go through
here too (``plan_propose_as``, ``plan_decide_as``): a proposed plan carries an approval request
(``detail.plan_id``), so it is decided under the same maker-checker and limits. Such a plan waives
nothing and may total less than the balance (a partial arrangement), never more.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from collectguard.adapters.db.models import Case, Installment, Loan, Payment, PaymentPlan
from collectguard.adapters.db.models_ops import ApprovalRequest
from collectguard.bootstrap import Container
from collectguard.domain.money import parse_amount
from collectguard.errors import BadInput, Conflict, Forbidden, NotFound
from collectguard.services import outcomes
from collectguard.services.audit import audit_append
from collectguard.services.authz import Principal, ensure_visible, require, scope_tenant
from collectguard.services.facts import borrower_lock

__all__ = ["KINDS", "PERM_DECIDE", "approval_decide", "approval_decide_as", "approval_limits", "approval_request",
           "approval_request_as", "approval_view", "approvals_list_as", "loan_balance", "oldest_unpaid_due",
           "plan_decide_as", "plan_propose", "plan_propose_as"]

KINDS = ("waiver", "plan", "extension")
_COMPONENTS = ("fee_due", "interest_due", "principal_due")  # what a waiver reduces first
ZERO = Decimal("0.00")
PERM_REQUEST, PERM_DECIDE = "plan.request", "approval.decide"


@cache
def approval_limits() -> dict[str, dict[str, dict[str, Any]]]:
    """The approval limits per kind and role (``policy/allocation/approvals.yaml``), loaded once."""
    res = resources.files("collectguard.policy").joinpath("allocation", "approvals.yaml")
    data = yaml.safe_load(res.read_text(encoding="utf-8"))
    limits = data["limits"]
    if set(limits) != set(KINDS):
        raise ValueError(f"approvals.yaml: limits must cover exactly {KINDS}")
    return limits  # type: ignore[no-any-return]


def _unpaid(s: Session, loan_id: int) -> tuple[list[tuple[Installment, Decimal]], Decimal]:
    """Installments oldest first with what is still unpaid of each, and the payments' total."""
    # The Money type applies to SUM too: the total comes back as a Decimal.
    paid = Decimal(s.scalar(select(func.coalesce(func.sum(Payment.amount), 0)).where(Payment.loan_id == loan_id))
                   or 0)
    rows, before = [], ZERO
    for inst in s.scalars(select(Installment).where(Installment.loan_id == loan_id)
                          .order_by(Installment.due_date, Installment.seq)):
        due = inst.principal_due + inst.interest_due + inst.fee_due
        covered = min(max(paid - before, ZERO), due)  # payments apply oldest first (DESIGN §13)
        rows.append((inst, due - covered))
        before += due
    return rows, paid


def oldest_unpaid_due(s: Session, *, loan_id: int) -> dt.date | None:
    """The due date of the oldest installment not yet covered by payments (``None`` when all are)."""
    return next((inst.due_date for inst, unpaid in _unpaid(s, loan_id)[0] if unpaid > 0), None)


def loan_balance(s: Session, *, loan_id: int, on: dt.date) -> dict[str, Decimal]:
    """What the loan's borrower owes now: ``outstanding`` (all dues − all payments) and ``overdue``
    (dues before ``on`` not covered), from installments and payments, not the last daily run."""
    rows, _paid = _unpaid(s, loan_id)
    return {"outstanding": sum((u for _, u in rows), ZERO),
            "overdue": sum((u for i, u in rows if i.due_date < on), ZERO)}


def _schedule_total(schedule: Any, on: dt.date) -> Decimal:
    """The total of a plan's ``[{due_date, amount}, …]``: dates distinct, ascending, not before ``on``."""
    if not isinstance(schedule, list) or not 1 <= len(schedule) <= 120:
        raise BadInput("a plan needs a schedule of 1–120 installments", field="schedule")
    total, last = ZERO, on - dt.timedelta(days=1)
    for n, item in enumerate(schedule):
        item = item if isinstance(item, dict) else {}
        try:
            due = dt.date.fromisoformat(str(item.get("due_date")))
        except ValueError:
            raise BadInput("expected an ISO date", field=f"schedule[{n}].due_date") from None
        if due <= last:
            raise BadInput("dates must be distinct, in order and not in the past", field=f"schedule[{n}].due_date")
        total, last = total + parse_amount(item.get("amount"), field=f"schedule[{n}].amount", positive=True), due
    return total


def approval_request(s: Session, *, tenant_id: int, case_id: int, kind: str, reason: str, maker: str,
                     maker_role: str, now: dt.datetime, on: dt.date, amount: Any = None, days: int | None = None,
                     schedule: list[dict[str, Any]] | None = None, waive_rest: bool = False) -> ApprovalRequest:
    """Ask for a waiver (``amount``), an extension (``days``) or a plan (``schedule``, ``waive_rest``)."""
    if kind not in KINDS:
        raise BadInput(f"expected one of {', '.join(KINDS)}", field="kind")
    if not reason.strip() or len(reason) > 4000:
        raise BadInput("a reason of 1–4000 characters is required", field="reason")
    case = s.get(Case, case_id)
    if case is None or case.tenant_id != tenant_id:
        raise NotFound("no such case")
    if case.status != "open":
        raise Conflict("the case is closed")
    loan = s.get(Loan, case.loan_id)
    assert loan is not None
    owed = loan_balance(s, loan_id=loan.id, on=on)["outstanding"]
    detail: dict[str, Any] = {}
    value = None
    if kind == "waiver":
        value = parse_amount(amount, field="amount", currency=loan.currency, positive=True)
        if value > owed:
            raise BadInput(f"more than the balance of {owed}", field="amount")
    elif kind == "extension":
        if not isinstance(days, int) or not 1 <= days <= 365:
            raise BadInput("an extension is 1–365 days", field="days")
        detail["days"] = days
    else:
        value = _schedule_total(schedule, on)
        if value > owed:  # charging more than is owed would be an extra fee (CN: CBA 2026 bans them)
            raise BadInput(f"the plan totals {value}, more than the balance of {owed}", field="schedule")
        if value < owed and not waive_rest:
            raise BadInput(f"the plan totals {value}, less than the balance of {owed}: set waive_rest to waive "
                           "the difference", field="waive_rest")
        detail |= {"schedule": schedule, "waive_rest": waive_rest}
    row = ApprovalRequest(tenant_id=tenant_id, case_id=case.id, loan_id=loan.id, borrower_id=case.borrower_id,
                          kind=kind, status="pending", amount=value, detail=detail, reason=reason, maker=maker[:120],
                          maker_role=maker_role, created_at=now, note="")
    s.add(row)
    s.flush()
    _audit(s, row, maker, f"approval.request.{kind}", now, amount=str(value) if value is not None else None,
           detail=detail, balance=str(owed))
    return row


def _authority(kind: str, role: str, *, currency: str, waived: Decimal, installments: int, days: int) -> None:
    """Raise ``Forbidden`` (naming the roles to escalate to) unless ``role``'s limit covers the request."""
    def covers(limit: dict[str, Any]) -> bool:
        if waived > 0 and "max_amount" in limit:
            cap = (limit["max_amount"] or {}).get(currency)
            if cap is None or waived > Decimal(str(cap)):
                return False
        return bool(installments <= limit.get("max_installments", installments)
                    and days <= limit.get("max_days", days))

    table = approval_limits()
    needs = [("waiver" if kind == "plan" and waived > 0 else None), kind]
    ok = all(role in table[k] and covers(table[k][role]) for k in needs if k)
    if not ok:
        others = sorted(r for r in table[kind] if all(r in table[k] and covers(table[k][r]) for k in needs if k))
        raise Forbidden(f"beyond what a {role} may approve; escalate to: {', '.join(others) or 'nobody'}",
                        detail={"escalate_to": others})


def approval_decide(s: Session, *, tenant_id: int, request_id: int, approve: bool, checker: str, checker_role: str,
                    note: str, on: dt.date, now: dt.datetime) -> ApprovalRequest:
    """Approve (the change is applied at once) or reject a pending request; never by its maker."""
    row = s.get(ApprovalRequest, request_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound("no such request")
    if row.status != "pending":
        raise Conflict(f"the request is {row.status}")
    if checker == row.maker:
        raise Forbidden("maker-checker: the person who asked cannot decide their own request")
    borrower_lock(s, row.borrower_id)  # serialise against payments, attempts and other approvals
    loan = s.get(Loan, row.loan_id)
    assert loan is not None
    effect: dict[str, Any] = {}
    detail: dict[str, Any] = dict(row.detail)
    linked = detail.get("plan_id") if row.kind == "plan" else None  # proposed through the ledger API
    if approve:
        owed = loan_balance(s, loan_id=loan.id, on=on)["outstanding"]
        schedule: list[dict[str, Any]] = detail.get("schedule") or []
        if linked is not None:  # a ledger plan waives nothing; it may not total more than is owed
            waived = ZERO if (row.amount or ZERO) <= owed else Decimal("-1")
        else:
            waived = {"waiver": row.amount or ZERO, "plan": owed - (row.amount or ZERO)}.get(row.kind, ZERO)
        if waived < 0 or waived > owed or (row.kind == "plan" and waived > 0 and not detail.get("waive_rest")):
            raise Conflict(f"the balance changed since the request (now {owed}); make a new request")
        _authority(row.kind, checker_role, currency=loan.currency, waived=waived, installments=len(schedule),
                   days=int(detail.get("days", 0)))
        if waived > 0:
            effect["waived"] = _waive(s, loan.id, waived)
        if row.kind == "extension":
            effect["extended"] = _extend(s, loan.id, int(detail["days"]))
        if row.kind == "plan":
            plan_id = int(linked) if linked is not None else outcomes.payment_plan_propose(
                s, tenant_id=tenant_id, case_id=row.case_id, schedule=schedule, actor=row.maker, now=now).id
            outcomes.payment_plan_decide(s, tenant_id=tenant_id, plan_id=plan_id, accept=True, starts_on=on,
                                         actor=checker, now=now)
            effect["plan_id"] = plan_id
    elif linked is not None:  # the proposed plan is rejected with its request (the request's record says so)
        plan_row = s.get(PaymentPlan, int(linked))
        if plan_row is not None and plan_row.status == "proposed":
            plan_row.status = "rejected"
    row.status = "approved" if approve else "rejected"
    row.checker, row.checker_role, row.decided_at, row.note, row.effect = checker[:120], checker_role, now, note, effect
    _audit(s, row, checker, f"approval.{row.status}.{row.kind}", now, note=note, effect=effect)
    return row


def _waive(s: Session, loan_id: int, amount: Decimal) -> list[dict[str, str | int]]:
    """Reduce unpaid dues by ``amount``: latest installment first, fees then interest then principal."""
    rows, _ = _unpaid(s, loan_id)
    rest, out = amount, []
    for inst, unpaid in reversed(rows):
        take = min(rest, unpaid)
        if take <= 0:
            continue
        cut: dict[str, str | int] = {"seq": inst.seq}
        for comp in _COMPONENTS:
            x = min(take, getattr(inst, comp))
            setattr(inst, comp, getattr(inst, comp) - x)
            take, rest = take - x, rest - x
            cut[comp] = str(x)
        out.append(cut)
    return out


def _extend(s: Session, loan_id: int, days: int) -> list[dict[str, str | int]]:
    rows, _ = _unpaid(s, loan_id)
    out: list[dict[str, str | int]] = []
    for inst, unpaid in rows:
        if unpaid > 0:
            new = inst.due_date + dt.timedelta(days=days)
            out.append({"seq": inst.seq, "from": inst.due_date.isoformat(), "to": new.isoformat()})
            inst.due_date = new
    return out


def _audit(s: Session, row: ApprovalRequest, actor: str, action: str, now: dt.datetime, **payload: Any) -> None:
    audit_append(s, tenant_id=row.tenant_id, actor=actor, action=action, subject=f"case:{row.case_id}", now=now,
                 payload={"borrower_id": row.borrower_id, "case_id": row.case_id, "request_id": row.id, **payload})


def approval_view(row: ApprovalRequest) -> dict[str, Any]:
    """A request as JSON."""
    return {"id": row.id, "case_id": row.case_id, "kind": row.kind, "status": row.status,
            "amount": str(row.amount) if row.amount is not None else None, "detail": row.detail,
            "reason": row.reason, "maker": row.maker, "maker_role": row.maker_role,
            "created_at": row.created_at.isoformat(), "checker": row.checker, "checker_role": row.checker_role,
            "decided_at": row.decided_at.isoformat() if row.decided_at else None, "note": row.note,
            "effect": row.effect}


# ---------------------------------------------------------------- for the API (principal-checked)

def approval_request_as(c: Container, *, principal: Principal, case_id: int, on: dt.date,
                        **kw: Any) -> dict[str, Any]:
    """``approval_request`` on a case the caller sees (``plan.request``)."""
    require(principal, PERM_REQUEST)
    with c.uow() as s:
        case = ensure_visible(s.get(Case, case_id), principal, session=s)
        row = approval_request(s, tenant_id=case.tenant_id, case_id=case.id, maker=principal.actor,
                               maker_role=principal.role, now=c.clock(), on=on, **kw)
        return approval_view(row)


def approval_decide_as(c: Container, *, principal: Principal, request_id: int, approve: bool, note: str,
                       on: dt.date) -> dict[str, Any]:
    """``approval_decide`` by a checker of the request's tenant (``approval.decide``)."""
    require(principal, PERM_DECIDE)
    with c.uow() as s:
        row = approval_decide(s, tenant_id=principal.tenant_id, request_id=request_id, approve=approve,
                              checker=principal.actor, checker_role=principal.role, note=note, on=on, now=c.clock())
        return approval_view(row)


def approvals_list_as(c: Container, *, principal: Principal, status: str | None = None,
                      case_id: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Requests the caller may see (``case.read``, tenant/borrower scope), newest first."""
    require(principal, "case.read")
    stmt = scope_tenant(select(ApprovalRequest), ApprovalRequest, principal)
    if status is not None:
        stmt = stmt.where(ApprovalRequest.status == status)
    if case_id is not None:
        stmt = stmt.where(ApprovalRequest.case_id == case_id)
    with c.uow(write=False) as s:
        return [approval_view(r) for r in s.scalars(stmt.order_by(ApprovalRequest.id.desc()).limit(min(limit, 500)))]


# ---------------------------------------------------------------- the ledger's plan endpoints

def plan_propose(s: Session, *, tenant_id: int, case_id: int, schedule: list[dict[str, Any]], maker: str,
                 maker_role: str, on: dt.date, now: dt.datetime, reason: str = "") -> tuple[PaymentPlan,
                                                                                            ApprovalRequest]:
    """A proposed payment plan (``outcomes.payment_plan_propose``) and the approval request it is decided by."""
    case = s.get(Case, case_id)
    if case is None or case.tenant_id != tenant_id:
        raise NotFound("no such case")
    if case.status != "open":
        raise Conflict("the case is closed")
    total = _schedule_total(schedule, on)
    owed = loan_balance(s, loan_id=case.loan_id, on=on)["outstanding"]
    if total > owed:  # charging more than is owed would be an extra fee
        raise BadInput(f"the plan totals {total}, more than the balance of {owed}", field="schedule")
    plan = outcomes.payment_plan_propose(s, tenant_id=tenant_id, case_id=case.id, schedule=schedule, actor=maker,
                                         now=now)
    why = reason.strip() or "payment plan proposed"
    if len(why) > 4000:
        raise BadInput("at most 4000 characters", field="reason")
    detail: dict[str, Any] = {"schedule": plan.schedule, "waive_rest": False, "plan_id": plan.id}
    row = ApprovalRequest(tenant_id=tenant_id, case_id=case.id, loan_id=case.loan_id, borrower_id=case.borrower_id,
                          kind="plan", status="pending", amount=total, detail=detail, reason=why, maker=maker[:120],
                          maker_role=maker_role, created_at=now, note="")
    s.add(row)
    s.flush()
    _audit(s, row, maker, "approval.request.plan", now, amount=str(total), detail=detail, balance=str(owed))
    return plan, row


def plan_propose_as(c: Container, *, principal: Principal, case_id: int, schedule: list[dict[str, Any]],
                    on: dt.date, reason: str = "") -> dict[str, Any]:
    """``plan_propose`` on a case the caller sees (``plan.request``)."""
    require(principal, PERM_REQUEST)
    with c.uow() as s:
        case = ensure_visible(s.get(Case, case_id), principal, session=s)
        plan, row = plan_propose(s, tenant_id=case.tenant_id, case_id=case.id, schedule=schedule,
                                 maker=principal.actor, maker_role=principal.role, on=on, now=c.clock(),
                                 reason=reason)
        return {"plan_id": plan.id, "status": plan.status, "request_id": row.id}


def plan_decide_as(c: Container, *, principal: Principal, plan_id: int, accept: bool, note: str,
                   on: dt.date) -> dict[str, Any]:
    """Decide a proposed plan through its approval request: never by its maker, within the checker's limits."""
    require(principal, PERM_DECIDE)
    with c.uow() as s:
        plan = s.get(PaymentPlan, plan_id)
        if plan is None or plan.tenant_id != principal.tenant_id:
            raise NotFound("no such payment plan")
        requests = s.scalars(select(ApprovalRequest).where(ApprovalRequest.case_id == plan.case_id,
                                                           ApprovalRequest.kind == "plan")
                             .order_by(ApprovalRequest.id.desc()))
        req = next((r for r in requests if (r.detail or {}).get("plan_id") == plan.id), None)
        if req is None:  # fail closed: without a request nobody can tell who the maker was
            raise Conflict("this plan has no approval request on record; propose it again")
        row = approval_decide(s, tenant_id=principal.tenant_id, request_id=req.id, approve=accept,
                              checker=principal.actor, checker_role=principal.role, note=note, on=on, now=c.clock())
        s.refresh(plan)
        return {"plan_id": plan.id, "status": plan.status, "request_id": row.id, "request_status": row.status}
