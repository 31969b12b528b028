"""Ledger endpoints: daily-run summaries, work queues, assignment, outcomes, recovery analytics.

Thin: parse, check the permission and that the case is visible to the caller (tenant, agency or
borrower scope, ``services.authz``), call one service in a unit of work, render.
Permissions used (``services.authz``): analytics and summaries ``portfolio.read``; the queue
``case.read``; capacities, contracts, recall and outsourcing notices ``case.assign``; promises
``ptp.create``; plans and hardship requests ``plan.request``; a plan's decision ``approval.decide``
under maker-checker (``services.approvals``); hardship decisions and resuming a case ``plan.approve``;
disputes ``complaint.create``, their resolution ``complaint.resolve``; strategies ``daily.run`` (admin).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from collectguard.adapters.db.models import Case
from collectguard.api.deps import ContainerDep, PrincipalDep
from collectguard.errors import NotFound
from collectguard.services import approvals, outcomes, queue
from collectguard.services.analytics import recovery_analytics
from collectguard.services.authz import Principal, ensure_visible, require
from collectguard.services.daily import daily_default_as_of, daily_summary
from collectguard.services.strategies import strategy_for, strategy_save

router = APIRouter(tags=["ledger"])


def _case(s: Any, p: Principal, case_id: int) -> Case:
    """The case when the caller may see it (404 otherwise, never 403: ids of others stay unconfirmed)."""
    return ensure_visible(s.get(Case, case_id), p, session=s)


@router.get("/analytics/recovery", summary="Roll rates, cure rate, PTP-kept rate, recovered amount")
def analytics_recovery(c: ContainerDep, p: PrincipalDep,
                       date_from: dt.date = Query(alias="from"), date_to: dt.date = Query(alias="to")
                       ) -> dict[str, Any]:
    """Over [from, to], for the caller's tenant, overall and by agency and collector."""
    require(p, "portfolio.read")
    with c.uow(write=False) as s:
        return recovery_analytics(s, tenant_id=p.tenant_id, date_from=date_from, date_to=date_to)


@router.get("/daily/{as_of}", summary="The summary of a daily run")
def daily_read(as_of: dt.date, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    require(p, "portfolio.read")
    summary = daily_summary(c, as_of=as_of)
    if summary is None:
        raise NotFound("no daily run for that date")
    return summary


@router.get("/queue", summary="Planned work items of a day")
def queue_read(c: ContainerDep, p: PrincipalDep, as_of: dt.date | None = None,
               limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0)) -> list[dict[str, Any]]:
    """Collectors see their own items, an agency what it holds, team leads and admins the tenant's."""
    require(p, "case.read")
    mine = p.user_id if p.role in ("collector", "agency_collector") else None
    with c.uow(write=False) as s:
        return queue.queue_list(s, tenant_id=p.tenant_id, as_of=as_of or daily_default_as_of(c),
                                assignee_user_id=mine, agency_tenant_id=p.agency_tenant_id, limit=limit,
                                offset=offset)


class Capacity(BaseModel):
    capacity: int = Field(ge=0, le=1_000_000)
    active: bool = True


class Contract(Capacity):
    processing_contract: bool


@router.put("/collectors/{user_id}/capacity", summary="How many open cases a collector holds")
def collector_capacity(user_id: int, body: Capacity, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    require(p, "case.assign")
    with c.uow() as s:
        queue.collector_capacity_set(s, tenant_id=p.tenant_id, user_id=user_id, capacity=body.capacity,
                                     active=body.active, actor=p.actor, now=c.clock())
    return {"user_id": user_id, **body.model_dump()}


@router.put("/agencies/{agency_tenant_id}/contract", summary="The contract with an agency")
def agency_contract(agency_tenant_id: int, body: Contract, c: ContainerDep,
                    p: PrincipalDep) -> dict[str, Any]:
    require(p, "case.assign")
    with c.uow() as s:
        queue.agency_contract_set(s, tenant_id=p.tenant_id, agency_tenant_id=agency_tenant_id,
                                  capacity=body.capacity, processing_contract=body.processing_contract,
                                  active=body.active, actor=p.actor, now=c.clock())
    return {"agency_tenant_id": agency_tenant_id, **body.model_dump()}


class Recall(BaseModel):
    case_ids: list[int] | None = None


@router.post("/agencies/{agency_tenant_id}/recall", summary="Take cases back from an agency")
def agency_recall(agency_tenant_id: int, body: Recall, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    require(p, "case.assign")
    with c.uow() as s:
        return queue.case_recall(s, tenant_id=p.tenant_id, agency_tenant_id=agency_tenant_id,
                                 case_ids=body.case_ids, on=daily_default_as_of(c), actor=p.actor,
                                 now=c.clock())


class OnDate(BaseModel):
    on: dt.date | None = None


@router.post("/cases/{case_id}/outsourcing-notice", summary="The borrower was told of the outsourcing")
def outsourcing_notice(case_id: int, body: OnDate, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    require(p, "case.assign")
    with c.uow() as s:
        case = _case(s, p, case_id)
        on = body.on or daily_default_as_of(c)
        queue.case_outsourcing_notified(s, tenant_id=case.tenant_id, case_id=case.id, on=on, actor=p.actor,
                                        now=c.clock())
    return {"case_id": case_id, "on": on.isoformat()}


class PtpIn(BaseModel):
    due_date: dt.date
    amount: Decimal = Field(gt=0, max_digits=14, decimal_places=2)
    promised_on: dt.date | None = None


@router.post("/cases/{case_id}/ptp", status_code=201, summary="Record a promise to pay")
def ptp_create(case_id: int, body: PtpIn, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    require(p, "ptp.create")
    with c.uow() as s:
        case = _case(s, p, case_id)
        row = outcomes.ptp_create(s, tenant_id=case.tenant_id, case_id=case.id, amount=body.amount,
                                  promised_on=body.promised_on or daily_default_as_of(c),
                                  due_date=body.due_date, actor=p.actor, now=c.clock())
        return {"ptp_id": row.id, "status": row.status}


class PlanIn(BaseModel):
    schedule: list[dict[str, Any]] = Field(min_length=1, max_length=120,
                                           description='[{"due_date": "2026-05-01", "amount": "300.00"}, …]')
    reason: str = Field("", max_length=4000)


@router.post("/cases/{case_id}/plans", status_code=201,
             summary="Propose a payment plan (decided under maker-checker, see /plans/{id}/decision)")
def plan_propose(case_id: int, body: PlanIn, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    return approvals.plan_propose_as(c, principal=p, case_id=case_id, schedule=body.schedule,
                                     on=daily_default_as_of(c), reason=body.reason)


class Decision(BaseModel):
    accept: bool
    note: str = Field("", max_length=2000)


@router.post("/plans/{plan_id}/decision", summary="Accept or reject a proposed plan (never your own proposal)")
def plan_decide(plan_id: int, body: Decision, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    """Through ``services.approvals``: ``approval.decide``, maker ≠ checker, the checker's limits."""
    return approvals.plan_decide_as(c, principal=p, plan_id=plan_id, accept=body.accept, note=body.note,
                                    on=daily_default_as_of(c))


class Reason(BaseModel):
    reason: str = Field(min_length=1, max_length=4000)


@router.post("/cases/{case_id}/disputes", status_code=201, summary="Open a dispute (collection pauses)")
def dispute_open(case_id: int, body: Reason, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    require(p, "complaint.create")
    with c.uow() as s:
        case = _case(s, p, case_id)
        req = outcomes.dispute_open(s, tenant_id=case.tenant_id, case_id=case.id, reason=body.reason,
                                    on=daily_default_as_of(c), actor=p.actor, now=c.clock())
        return {"request_id": req.id, "status": req.status}


class Resolution(BaseModel):
    upheld: bool
    note: str = Field("", max_length=2000)


@router.post("/disputes/{request_id}/resolution", summary="Resolve a dispute")
def dispute_resolve(request_id: int, body: Resolution, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    require(p, "complaint.resolve")
    with c.uow() as s:
        req = outcomes.dispute_resolve(s, tenant_id=p.tenant_id, request_id=request_id, upheld=body.upheld,
                                       note=body.note, on=daily_default_as_of(c), actor=p.actor,
                                       now=c.clock())
        return {"request_id": req.id, "resolution": req.resolution}


@router.post("/cases/{case_id}/hardship", status_code=201, summary="Ask for hardship relief")
def hardship_request(case_id: int, body: Reason, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    require(p, "plan.request")
    with c.uow() as s:
        case = _case(s, p, case_id)
        req = outcomes.hardship_request(s, tenant_id=case.tenant_id, case_id=case.id, reason=body.reason,
                                        actor=p.actor, now=c.clock())
        return {"request_id": req.id, "status": req.status}


class Grant(BaseModel):
    granted: bool
    note: str = Field("", max_length=2000)


@router.post("/hardship/{request_id}/decision", summary="Grant or decline hardship relief")
def hardship_decide(request_id: int, body: Grant, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    require(p, "plan.approve")
    with c.uow() as s:
        req = outcomes.hardship_decide(s, tenant_id=p.tenant_id, request_id=request_id, granted=body.granted,
                                       note=body.note, on=daily_default_as_of(c), actor=p.actor,
                                       now=c.clock())
        return {"request_id": req.id, "resolution": req.resolution}


@router.post("/cases/{case_id}/resume", summary="End a hardship pause")
def case_resume(case_id: int, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    require(p, "plan.approve")
    with c.uow() as s:
        case = _case(s, p, case_id)
        outcomes.case_resume(s, tenant_id=case.tenant_id, case_id=case.id, actor=p.actor, now=c.clock())
    return {"case_id": case_id, "paused_reason": None}


@router.get("/strategies/{jurisdiction}", summary="The collection strategy in force")
def strategy_read(jurisdiction: str, c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    require(p, "case.read")
    with c.uow(write=False) as s:
        spec = strategy_for(s, tenant_id=p.tenant_id, jurisdiction=jurisdiction.upper())
    return spec.model_dump(mode="json")


@router.put("/strategies", summary="Save the tenant's strategy (its templates are linted by the guard)")
def strategy_put(body: dict[str, Any], c: ContainerDep, p: PrincipalDep) -> dict[str, Any]:
    require(p, "daily.run")
    with c.uow() as s:
        row = strategy_save(s, tenant_id=p.tenant_id, body=body, actor=p.actor, now=c.clock())
        return {"strategy_id": row.id, "jurisdiction": row.jurisdiction, "version": row.version,
                "sha256": row.sha256}
