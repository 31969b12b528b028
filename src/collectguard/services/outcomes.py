"""Outcomes of collection: promises to pay, payment plans, disputes and hardship requests.

Every change writes an audit record in the same transaction. Collection pauses are the case's
``paused_reason``: ``dispute`` (until the dispute is resolved), ``hardship`` (granted, until the
case is resumed) and ``payment_plan`` (while a plan is active); the queue skips paused cases.

The daily run settles what depends on payments (``outcomes_settle``), in SQL:
- a PTP is ``kept`` as soon as payments dated from its promise date to its due date reach its
  amount; once its due date has passed it is ``partial`` (something was paid) or ``broken``;
- an active plan is ``completed`` when payments since it started reach its total, and ``broken``
  when they fall behind its installments due before the as-of date (the case is then unpaused).
A plan is a record with its own installments; from its start the daily run computes the loan's DPD
and bucket on them (docs/ledger.md, "Payment plans re-age the schedule").

Only a debtor promises to pay: collection is addressed to the debtor alone, and a third party may
only be asked how to reach the debtor or to pass on a message (GB/T 45251; CBA 2026; FDCPA 1692b/c(b)).
``ptp_refusal`` says why a promise (or any "someone else pays" result, ``PAYING_RESULTS``) from a
recipient who is not a debtor of the pack (``debtor_roles``: CN borrower and guarantor) is refused,
with the citations of the pack's ``<pack>.third_party.purpose`` rule; ``ptp_create`` and the attempt
outcome path (``services.attempts``) refuse it (422, ``refusal`` in the problem).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from collectguard.adapters.db.models import Case, Loan, PaymentPlan, PromiseToPay
from collectguard.adapters.db.models_ledger import CaseRequest, PlanInstallment, WorkItem
from collectguard.domain.money import parse_amount
from collectguard.errors import BadInput, Conflict, NotFound
from collectguard.services.audit import audit_append
from collectguard.services.daily_sql import dated, temp_table

OUTCOME_SQL = {
    "o_ptp": """INSERT INTO o_ptp (id, tenant_id, status)
SELECT t.id, t.tenant_id,
       CASE WHEN x.paid >= t.amount THEN 'kept' WHEN x.paid > 0 THEN 'partial' ELSE 'broken' END
FROM ptp t JOIN (
  SELECT t2.id, COALESCE(SUM(p.amount), 0) AS paid FROM ptp t2
  JOIN collection_case c ON c.id = t2.case_id
  LEFT JOIN payment p ON p.loan_id = c.loan_id AND p.paid_on >= t2.promised_on AND p.paid_on <= t2.due_date
                     AND p.paid_on <= :d
  WHERE t2.status = 'open' GROUP BY t2.id) x ON x.id = t.id
WHERE x.paid >= t.amount OR t.due_date < :d""",
    "o_plan": """INSERT INTO o_plan (id, tenant_id, status)
SELECT x.id, x.tenant_id, CASE WHEN x.paid >= x.total THEN 'completed' ELSE 'broken' END FROM (
  SELECT a.id, a.tenant_id, a.total, a.due_before, COALESCE(SUM(p.amount), 0) AS paid FROM (
    SELECT pl.id, pl.tenant_id, MIN(pi.loan_id) AS loan_id, MIN(pi.starts_on) AS starts_on,
           SUM(pi.amount) AS total,
           SUM(CASE WHEN pi.due_date < :d THEN pi.amount ELSE 0 END) AS due_before
    FROM payment_plan pl JOIN plan_installment pi ON pi.plan_id = pl.id
    WHERE pl.status = 'active' GROUP BY pl.id, pl.tenant_id) a
  LEFT JOIN payment p ON p.loan_id = a.loan_id AND p.paid_on >= a.starts_on AND p.paid_on <= :d
  GROUP BY a.id, a.tenant_id, a.total, a.due_before) x
WHERE x.paid >= x.total OR x.paid < x.due_before""",
}
APPLY_SQL = (
    "UPDATE ptp SET status = (SELECT o.status FROM o_ptp o WHERE o.id = ptp.id), settled_on = :d "
    "WHERE id IN (SELECT id FROM o_ptp)",
    "UPDATE payment_plan SET status = (SELECT o.status FROM o_plan o WHERE o.id = payment_plan.id) "
    "WHERE id IN (SELECT id FROM o_plan)",
    "UPDATE collection_case SET paused_reason = NULL WHERE paused_reason = 'payment_plan' "
    "AND id IN (SELECT pl.case_id FROM payment_plan pl JOIN o_plan o ON o.id = pl.id)",
)


def outcomes_settle(s: Session, *, as_of: dt.date, now: dt.datetime) -> dict[str, Any]:
    """Daily-run stage: settle open PTPs and active payment plans as of ``as_of`` (idempotent)."""
    conn = s.connection()
    settled: dict[str, list[tuple[int, int, str]]] = {}
    for name, stmt in OUTCOME_SQL.items():
        temp_table(conn, name, "id BIGINT PRIMARY KEY, tenant_id BIGINT, status VARCHAR(16)")
        conn.execute(dated(stmt), {"d": as_of})
        settled[name] = [tuple(r) for r in conn.execute(text(f"SELECT id, tenant_id, status FROM {name}"))]  # noqa: S608
    for stmt in APPLY_SQL:
        conn.execute(dated(stmt), {"d": as_of})
    for name, action in (("o_ptp", "ptp.settled"), ("o_plan", "payment_plan.settled")):
        by_tenant: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        for rid, tenant_id, status in settled[name]:
            by_tenant[tenant_id][status].append(rid)
        for tenant_id, ids in sorted(by_tenant.items()):
            audit_append(s, tenant_id=tenant_id, actor="system:daily", action=action, now=now,
                         subject=f"daily_run:{as_of}", payload={k: sorted(v) for k, v in ids.items()})
        temp_table(conn, name)
    ptp = dict.fromkeys(("kept", "partial", "broken"), 0)
    settled_today = (select(PromiseToPay.status, func.count()).where(PromiseToPay.settled_on == as_of)
                     .group_by(PromiseToPay.status))
    for status, n in s.execute(settled_today):
        ptp[status] = int(n)
    ptp["open"] = int(s.scalar(select(func.count()).select_from(PromiseToPay)
                               .where(PromiseToPay.status == "open")) or 0)
    plans: dict[str, int] = defaultdict(int)
    for _rid, _tenant, status in settled["o_plan"]:
        plans[status] += 1
    return {"ptp": ptp, "plans": dict(plans)}


# ---------------------------------------------------------------- promises to pay

# Outcome codes that record a payment or a promise by the recipient of a contact: a debtor's only.
PAYING_RESULTS = frozenset({"ptp"})
_DEBTORS = frozenset({"borrower", "guarantor"})  # without a pack for the jurisdiction (fail closed: the narrowest)
_REFUSAL_ZH = ("第三人不是债务人，不能记录其还款承诺或代为还款：只能向债务人本人催收，对第三人只能询问债务人的联系方式"
               "或请其转告。第三人主动提出代为还款的，只告知还款所需信息，不作为还款承诺记录。")
_REFUSAL_EN = ("A third party is not the debtor: no promise to pay (or payment on the debtor's behalf) is recorded "
               "for them. Collect only from the debtor; a third party may only be asked how to reach the debtor or "
               "to pass on a message. If one offers to pay, give only what is needed to pay, and record no promise.")


def ptp_refusal(*, role: str, jurisdiction: str) -> dict[str, Any] | None:
    """Why a promise to pay from a recipient of ``role`` is refused (``{rule, message_zh, message_en,
    citations}``), or ``None`` when the pack of ``jurisdiction`` counts that role as a debtor."""
    from collectguard.rules import Guard  # the compiled packs: loaded once per process

    pack = Guard.default().packs.get(jurisdiction)
    if role in (pack.debtor_roles if pack is not None else _DEBTORS):
        return None
    rule = next((r for r in pack.spec.rules if r.id.endswith(".third_party.purpose")), None) if pack else None
    return {"rule": rule.id if rule else "third_party.purpose", "message_zh": _REFUSAL_ZH, "message_en": _REFUSAL_EN,
            "citations": [c.id for c in rule.citations] if rule else ["CN:GBT45251", "CN:CBA2026"]}


def ptp_recipient_check(*, role: str, jurisdiction: str, field: str = "result") -> None:
    """Raise ``BadInput`` (422, with the refusal and its citations) unless ``role`` is a debtor's."""
    refusal = ptp_refusal(role=role, jurisdiction=jurisdiction)
    if refusal is not None:
        raise BadInput(f"{refusal['message_en']} ({', '.join(refusal['citations'])})", field=field,
                       detail={"refusal": refusal})


def ptp_create(s: Session, *, tenant_id: int, case_id: int, promised_on: dt.date, due_date: dt.date,
               amount: Any, actor: str, now: dt.datetime, recipient_role: str | None = None,
               jurisdiction: str = "CN") -> PromiseToPay:
    """Record a promise made on ``promised_on`` to pay ``amount`` by ``due_date`` (one open PTP per case).

    ``recipient_role``: who promised, when known (the recipient of the contact); a third party is refused.
    """
    if recipient_role is not None:
        ptp_recipient_check(role=recipient_role, jurisdiction=jurisdiction, field="recipient_role")
    case = _open_case(s, tenant_id, case_id)
    value = parse_amount(amount, field="amount", positive=True)
    if due_date < promised_on:
        raise BadInput("the due date cannot be before the promise date", field="due_date")
    open_ptp = select(PromiseToPay.id).where(PromiseToPay.case_id == case.id, PromiseToPay.status == "open")
    if s.scalar(open_ptp):
        raise Conflict("the case already has an open promise to pay")
    row = PromiseToPay(tenant_id=tenant_id, case_id=case.id, promised_on=promised_on, due_date=due_date,
                       amount=value, status="open", created_at=now)
    s.add(row)
    s.flush()
    _audit(s, case, actor, "ptp.create", now, ptp_id=row.id, amount=str(value), due_date=due_date.isoformat())
    return row


# ---------------------------------------------------------------- payment plans

def payment_plan_propose(s: Session, *, tenant_id: int, case_id: int, schedule: list[dict[str, Any]],
                         actor: str, now: dt.datetime) -> PaymentPlan:
    """Propose a restructured schedule ``[{due_date, amount}, …]`` for a case (status ``proposed``)."""
    case = _open_case(s, tenant_id, case_id)
    rows = _schedule(schedule)
    plan = PaymentPlan(tenant_id=tenant_id, case_id=case.id, status="proposed", created_at=now,
                       schedule=[{"due_date": d.isoformat(), "amount": str(a)} for d, a in rows])
    s.add(plan)
    s.flush()
    _audit(s, case, actor, "payment_plan.propose", now, plan_id=plan.id, schedule=plan.schedule)
    return plan


def payment_plan_decide(s: Session, *, tenant_id: int, plan_id: int, accept: bool, starts_on: dt.date,
                        actor: str, now: dt.datetime) -> PaymentPlan:
    """Accept (``active``: its installments are written, collection pauses) or reject a proposed plan."""
    plan = s.get(PaymentPlan, plan_id)
    if plan is None or plan.tenant_id != tenant_id:
        raise NotFound("no such payment plan")
    if plan.status != "proposed":
        raise Conflict(f"the plan is {plan.status}, not proposed")
    case = _open_case(s, tenant_id, plan.case_id)
    plan.status = "active" if accept else "rejected"
    if accept:
        for seq, item in enumerate(plan.schedule or [], 1):
            s.add(PlanInstallment(plan_id=plan.id, loan_id=case.loan_id, seq=seq,
                                  due_date=dt.date.fromisoformat(str(item["due_date"])),
                                  amount=Decimal(str(item["amount"])), starts_on=starts_on))
        _pause(s, case, "payment_plan", starts_on)
    _audit(s, case, actor, "payment_plan.accept" if accept else "payment_plan.reject", now, plan_id=plan.id)
    return plan


# ---------------------------------------------------------------- disputes and hardship

def dispute_open(s: Session, *, tenant_id: int, case_id: int, reason: str, on: dt.date, actor: str,
                 now: dt.datetime) -> CaseRequest:
    """The borrower disputes the debt: collection pauses and the loan is marked ``disputed``."""
    case = _open_case(s, tenant_id, case_id)
    if s.scalar(select(CaseRequest.id).where(CaseRequest.case_id == case.id, CaseRequest.kind == "dispute",
                                             CaseRequest.status == "open")):
        raise Conflict("the case already has an open dispute")
    req = _request(s, case, "dispute", reason, now)
    _pause(s, case, "dispute", on)
    s.execute(update(Loan).where(Loan.id == case.loan_id).values(debt_status="disputed"))
    _audit(s, case, actor, "dispute.open", now, request_id=req.id)
    return req


def dispute_resolve(s: Session, *, tenant_id: int, request_id: int, upheld: bool, note: str, on: dt.date,
                    actor: str, now: dt.datetime) -> CaseRequest:
    """Resolve a dispute. Rejected: the debt is confirmed, collection resumes. Upheld: the case closes
    (``dispute_upheld``) and the loan stays ``disputed`` until the lender corrects its ledger."""
    req, case = _open_request(s, tenant_id, request_id, "dispute")
    req.status, req.resolution, req.resolved_at = "resolved", "upheld" if upheld else "rejected", now
    req.detail = {**(req.detail or {}), "note": note}
    if upheld:
        case.status, case.closed_on, case.close_reason = "closed", on, "dispute_upheld"
        case.paused_reason = None
    else:
        if case.paused_reason == "dispute":
            case.paused_reason = None
        s.execute(update(Loan).where(Loan.id == case.loan_id, Loan.debt_status == "disputed")
                  .values(debt_status="valid"))
    _audit(s, case, actor, "dispute.resolve", now, request_id=req.id, resolution=req.resolution)
    return req


def hardship_request(s: Session, *, tenant_id: int, case_id: int, reason: str, actor: str,
                     now: dt.datetime) -> CaseRequest:
    """The borrower asks for relief (illness, job loss …); nothing pauses until it is granted."""
    case = _open_case(s, tenant_id, case_id)
    req = _request(s, case, "hardship", reason, now)
    _audit(s, case, actor, "hardship.request", now, request_id=req.id)
    return req


def hardship_decide(s: Session, *, tenant_id: int, request_id: int, granted: bool, note: str, on: dt.date,
                    actor: str, now: dt.datetime) -> CaseRequest:
    """Grant (collection pauses until ``case_resume``) or decline a hardship request."""
    req, case = _open_request(s, tenant_id, request_id, "hardship")
    req.status, req.resolution, req.resolved_at = "resolved", "granted" if granted else "declined", now
    req.detail = {**(req.detail or {}), "note": note}
    if granted and case.paused_reason is None:
        _pause(s, case, "hardship", on)
    _audit(s, case, actor, "hardship.decide", now, request_id=req.id, resolution=req.resolution)
    return req


def case_resume(s: Session, *, tenant_id: int, case_id: int, actor: str, now: dt.datetime) -> Case:
    """End a hardship pause. A dispute pause ends only by resolving the dispute, a plan's with the plan."""
    case = _open_case(s, tenant_id, case_id)
    if case.paused_reason != "hardship":
        raise Conflict(f"the case is not paused for hardship (paused: {case.paused_reason or 'no'})")
    case.paused_reason = None
    _audit(s, case, actor, "case.resume", now)
    return case


# ---------------------------------------------------------------- helpers

def _open_case(s: Session, tenant_id: int, case_id: int) -> Case:
    case = s.get(Case, case_id)
    if case is None or case.tenant_id != tenant_id:
        raise NotFound("no such case")
    if case.status != "open":
        raise Conflict("the case is closed")
    return case


def _open_request(s: Session, tenant_id: int, request_id: int, kind: str) -> tuple[CaseRequest, Case]:
    req = s.get(CaseRequest, request_id)
    if req is None or req.tenant_id != tenant_id or req.kind != kind:
        raise NotFound(f"no such {kind}")
    if req.status != "open":
        raise Conflict(f"the {kind} is already resolved")
    case = s.get(Case, req.case_id)
    assert case is not None
    return req, case


def _request(s: Session, case: Case, kind: str, reason: str, now: dt.datetime) -> CaseRequest:
    if not reason.strip() or len(reason) > 4000:
        raise BadInput("a reason of 1–4000 characters is required", field="reason")
    req = CaseRequest(tenant_id=case.tenant_id, case_id=case.id, kind=kind, status="open", reason=reason,
                      opened_at=now)
    s.add(req)
    s.flush()
    return req


def _pause(s: Session, case: Case, reason: str, on: dt.date) -> None:
    """Pause collection (a dispute overrides a softer pause) and cancel the case's planned actions."""
    if case.paused_reason is None or reason == "dispute":
        case.paused_reason = reason
    s.execute(update(WorkItem).where(WorkItem.case_id == case.id, WorkItem.as_of >= on,
                                     WorkItem.status == "planned").values(status="cancelled"))


def _schedule(schedule: list[dict[str, Any]]) -> list[tuple[dt.date, Decimal]]:
    if not schedule or len(schedule) > 120:
        raise BadInput("a plan has 1–120 installments", field="schedule")
    rows = []
    for n, item in enumerate(schedule):
        try:
            due = dt.date.fromisoformat(str(item["due_date"]))
        except (KeyError, ValueError):
            raise BadInput("expected an ISO date", field=f"schedule[{n}].due_date") from None
        rows.append((due, parse_amount(item.get("amount"), field=f"schedule[{n}].amount", positive=True)))
    if [d for d, _ in rows] != sorted({d for d, _ in rows}):
        raise BadInput("installment dates must be distinct and in order", field="schedule")
    return rows


def _audit(s: Session, case: Case, actor: str, action: str, now: dt.datetime, **payload: Any) -> None:
    audit_append(s, tenant_id=case.tenant_id, actor=actor, action=action, subject=f"case:{case.id}",
                 payload={"borrower_id": case.borrower_id, "case_id": case.id, **payload}, now=now)
