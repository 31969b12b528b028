"""Waivers (减免), payment plans (分期) and term extensions (展期) under maker-checker: limits per role as
data, what each approval changes in the ledger, and how the daily run sees it (both backends)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from test_allocation import NOW, D, borrower, case, lender, principal

from collectguard.adapters.db.models import AuditRecord, Case, Installment, Loan, Payment, PaymentPlan
from collectguard.adapters.db.models_ledger import PlanInstallment
from collectguard.errors import BadInput, Conflict, Forbidden, NotFound
from collectguard.services.approvals import (
    approval_decide,
    approval_decide_as,
    approval_limits,
    approval_request,
    approval_request_as,
    approvals_list_as,
    loan_balance,
    plan_decide_as,
    plan_propose_as,
)


@pytest.fixture
def w(container):
    with container.uow() as s:
        t, other = lender(s), lender(s, "lender-z")
        b = borrower(s, container, t, "B1")
        row = case(s, b, "L1", bucket="M1", dpd=10, amount="3000.00")
        far = case(s, borrower(s, container, other, "B9"), "L9")
        return {"t": t, "case": row.id, "loan": row.loan_id, "borrower": b.id, "far": far.id,
                "collector": principal(t, "collector", user_id=None, token_id=11),
                "lead": principal(t, "team_lead", token_id=12), "lead2": principal(t, "team_lead", token_id=13),
                "officer": principal(t, "compliance_officer", token_id=14),
                "zhang": dataclasses.replace(principal(t, "borrower", token_id=15), borrower_id=b.id)}


def ask(c, w, who="collector", **kw):
    kw.setdefault("reason", "失业，申请减免罚息")
    return approval_request_as(c, principal=w[who], case_id=w["case"], on=D, **kw)


def decide(c, w, rid, who="lead", approve=True):
    return approval_decide_as(c, principal=w[who], request_id=rid, approve=approve, note="ok", on=D)


def dues(c, w):
    with c.uow(write=False) as s:
        rows = s.scalars(select(Installment).where(Installment.loan_id == w["loan"]).order_by(Installment.seq))
        return [(i.seq, i.due_date, i.principal_due, i.interest_due, i.fee_due) for i in rows]


def balance(c, w):
    with c.uow(write=False) as s:
        return loan_balance(s, loan_id=w["loan"], on=D)


def test_the_limits_are_data_with_every_kind():
    limits = approval_limits()
    assert set(limits) == {"waiver", "plan", "extension"}
    assert limits["waiver"]["team_lead"]["max_amount"]["CNY"] == "2000.00"


def test_a_waiver_within_the_team_leads_limit_reduces_the_latest_dues_charges_first(container, w):
    assert balance(container, w) == {"outstanding": Decimal("3000.00"), "overdue": Decimal("1500.00")}
    req = ask(container, w, kind="waiver", amount=Decimal("1520.00"))
    assert req["status"] == "pending" and req["maker_role"] == "collector"
    out = decide(container, w, req["id"])
    assert out["status"] == "approved" and out["checker_role"] == "team_lead"
    # Installment 2 (1500: principal 1480, interest 15, fee 5) goes first, then 20 of installment 1's charges.
    assert out["effect"]["waived"] == [
        {"seq": 2, "fee_due": "5.00", "interest_due": "15.00", "principal_due": "1480.00"},
        {"seq": 1, "fee_due": "5.00", "interest_due": "15.00", "principal_due": "0.00"}]
    assert balance(container, w) == {"outstanding": Decimal("1480.00"), "overdue": Decimal("1480.00")}
    with container.uow(write=False) as s:
        actions = s.scalars(select(AuditRecord.action).where(AuditRecord.subject == f"case:{w['case']}")).all()
    assert actions == ["approval.request.waiver", "approval.approved.waiver"]


def test_the_maker_can_never_decide_their_own_request(container, w):
    req = ask(container, w, who="lead", kind="waiver", amount="100")
    with pytest.raises(Forbidden, match="maker-checker"):
        decide(container, w, req["id"], who="lead")
    assert decide(container, w, req["id"], who="lead2")["status"] == "approved"
    with pytest.raises(Conflict):
        decide(container, w, req["id"], who="officer")


def test_beyond_the_limit_is_escalated_to_the_role_whose_limit_covers_it(container, w):
    req = ask(container, w, kind="waiver", amount="2500.00")
    with pytest.raises(Forbidden) as exc:
        decide(container, w, req["id"], who="lead")
    assert exc.value.detail["escalate_to"] == ["compliance_officer"]
    assert dues(container, w)[1][2] == Decimal("1480.00")  # nothing changed
    assert decide(container, w, req["id"], who="officer")["status"] == "approved"
    with pytest.raises(Forbidden):  # a collector holds no plan.approve at all
        decide(container, w, ask(container, w, who="lead", kind="waiver", amount="1")["id"], who="collector")


def test_an_extension_re_ages_the_unpaid_installments_and_the_daily_run_sees_it(container, w):
    from collectguard.services.daily import daily_run

    with container.uow() as s:
        loan_id = w["loan"]
        s.add(Payment(loan_id=loan_id, paid_on=D - dt.timedelta(days=20), amount=Decimal("100.00"), created_at=NOW))
    with pytest.raises(Forbidden):
        decide(container, w, ask(container, w, kind="extension", days=45)["id"], who="lead")  # team lead: ≤ 30 days
    req = ask(container, w, kind="extension", days=30)
    out = decide(container, w, req["id"])
    assert [e["to"] for e in out["effect"]["extended"]] == [(D + dt.timedelta(days=20)).isoformat(),
                                                            (D + dt.timedelta(days=60)).isoformat()]
    daily_run(container, as_of=D)
    with container.uow(write=False) as s:
        loan = s.get(Loan, loan_id)
        assert (loan.dpd, loan.bucket) == (0, "M0")  # the oldest unpaid installment now falls due in 20 days
        assert s.get(Case, w["case"]).status == "closed"  # cured


def test_an_approved_plan_becomes_an_active_plan_and_pauses_the_case(container, w):
    schedule = [{"due_date": (D + dt.timedelta(days=30 * k)).isoformat(), "amount": "1000.00"} for k in (1, 2, 3)]
    out = decide(container, w, ask(container, w, kind="plan", schedule=schedule)["id"])
    with container.uow(write=False) as s:
        plan = s.get(PaymentPlan, out["effect"]["plan_id"])
        assert plan.status == "active"
        rows = select(func.count()).select_from(PlanInstallment).where(PlanInstallment.plan_id == plan.id)
        assert s.scalar(rows) == 3
        assert s.get(Case, w["case"]).paused_reason == "payment_plan"


def test_a_plan_for_less_than_the_balance_needs_waive_rest_and_the_waiver_limit(container, w):
    short = [{"due_date": (D + dt.timedelta(days=30)).isoformat(), "amount": "500.00"}]
    with pytest.raises(BadInput) as exc:
        ask(container, w, kind="plan", schedule=short)
    assert exc.value.field == "waive_rest"
    req = ask(container, w, kind="plan", schedule=short, waive_rest=True)  # implies a 2,500 waiver
    with pytest.raises(Forbidden):
        decide(container, w, req["id"], who="lead")
    out = decide(container, w, req["id"], who="officer")
    assert sum(Decimal(e["principal_due"]) + Decimal(e["interest_due"]) + Decimal(e["fee_due"])
               for e in out["effect"]["waived"]) == Decimal("2500.00")
    assert balance(container, w)["outstanding"] == Decimal("500.00")


@pytest.mark.parametrize("kw, field", [
    ({"kind": "gift"}, "kind"), ({"kind": "waiver", "amount": "3000.01"}, "amount"),
    ({"kind": "waiver", "amount": "0"}, "amount"), ({"kind": "extension", "days": 0}, "days"),
    ({"kind": "plan", "schedule": [{"due_date": "2026-05-01", "amount": "3500.00"}]}, "schedule"),
    ({"kind": "plan", "schedule": [{"due_date": "2026-04-01", "amount": "3000.00"}]}, "schedule[0].due_date"),
    ({"kind": "plan", "schedule": []}, "schedule"), ({"kind": "waiver", "amount": "5", "reason": " "}, "reason"),
])
def test_bad_requests_name_the_field(container, w, kw, field):
    with pytest.raises(BadInput) as exc:
        ask(container, w, **kw)
    assert exc.value.field == field


def test_a_balance_that_changed_since_the_request_is_a_conflict(container, w):
    req = ask(container, w, kind="waiver", amount="1500.00")
    with container.uow() as s:
        s.add(Payment(loan_id=w["loan"], paid_on=D, amount=Decimal("2000.00"), created_at=NOW))
    with pytest.raises(Conflict):
        decide(container, w, req["id"])


def test_a_rejection_changes_nothing_and_is_audited(container, w):
    before = dues(container, w)
    out = decide(container, w, ask(container, w, kind="waiver", amount="10")["id"], approve=False)
    assert out["status"] == "rejected" and out["effect"] == {} and dues(container, w) == before


def test_scope_the_borrower_asks_and_sees_only_their_own(container, w):
    zhang = w["zhang"]
    out = approval_request_as(container, principal=zhang, case_id=w["case"], on=D, kind="extension", days=10,
                              reason="住院")
    assert out["maker_role"] == "borrower"
    with pytest.raises(NotFound):
        approval_request_as(container, principal=zhang, case_id=w["far"], on=D, kind="extension", days=10,
                            reason="x")
    assert [r["id"] for r in approvals_list_as(container, principal=zhang)] == [out["id"]]
    with container.uow() as s, pytest.raises(NotFound):
        approval_decide(s, tenant_id=w["t"].id + 999, request_id=out["id"], approve=True, checker="x",
                        checker_role="compliance_officer", note="", on=D, now=NOW)
    with container.uow() as s, pytest.raises(NotFound):
        approval_request(s, tenant_id=w["t"].id, case_id=w["far"], kind="extension", days=1, reason="x", maker="m",
                         maker_role="collector", now=NOW, on=D)


# ---------------------------------------------------------------- the ledger's plan endpoints, same maker-checker

def propose(c, w, who="collector", n=2, amount="500.00"):
    schedule = [{"due_date": (D + dt.timedelta(days=30 * (i + 1))).isoformat(), "amount": amount} for i in range(n)]
    return plan_propose_as(c, principal=w[who], case_id=w["case"], schedule=schedule, on=D, reason="分两期")


def test_a_ledger_plan_is_decided_through_its_approval_request_never_by_its_maker(container, w):
    out = propose(container, w, who="lead")
    assert out["status"] == "proposed"
    pending = approvals_list_as(container, principal=w["officer"], status="pending")
    assert [(r["id"], r["detail"]["plan_id"], r["amount"]) for r in pending] == [
        (out["request_id"], out["plan_id"], "1000.00")]
    with pytest.raises(Forbidden, match="maker-checker"):
        plan_decide_as(container, principal=w["lead"], plan_id=out["plan_id"], accept=True, note="", on=D)
    with pytest.raises(Forbidden):  # a collector holds no approval.decide
        plan_decide_as(container, principal=w["collector"], plan_id=out["plan_id"], accept=True, note="", on=D)
    done = plan_decide_as(container, principal=w["lead2"], plan_id=out["plan_id"], accept=True, note="ok", on=D)
    assert done == {"plan_id": out["plan_id"], "status": "active", "request_id": out["request_id"],
                    "request_status": "approved"}
    with container.uow(write=False) as s:
        assert s.get(Case, w["case"]).paused_reason == "payment_plan"
        assert s.scalar(select(func.count()).select_from(PaymentPlan)) == 1  # no second plan was made
        assert s.scalar(select(func.count()).where(PlanInstallment.plan_id == out["plan_id"])) == 2
        actions = list(s.scalars(select(AuditRecord.action).where(AuditRecord.subject == f"case:{w['case']}")
                                 .order_by(AuditRecord.id)))
    assert actions == ["payment_plan.propose", "approval.request.plan", "payment_plan.accept",
                       "approval.approved.plan"]
    with pytest.raises(Conflict):  # decided once
        plan_decide_as(container, principal=w["officer"], plan_id=out["plan_id"], accept=False, note="", on=D)


def test_a_ledger_plan_beyond_the_checkers_limit_is_escalated_and_a_rejection_rejects_the_plan(container, w):
    out = propose(container, w, n=10, amount="100.00")  # 10 installments: beyond a team lead's 6
    with pytest.raises(Forbidden) as exc:
        plan_decide_as(container, principal=w["lead"], plan_id=out["plan_id"], accept=True, note="", on=D)
    assert exc.value.detail["escalate_to"] == ["compliance_officer"]
    done = plan_decide_as(container, principal=w["officer"], plan_id=out["plan_id"], accept=False, note="不同意",
                          on=D)
    assert done["status"] == "rejected" and done["request_status"] == "rejected"
    with container.uow(write=False) as s:
        assert s.get(Case, w["case"]).paused_reason is None


def test_a_ledger_plan_may_not_total_more_than_the_balance_and_foreign_plans_are_not_found(container, w):
    with pytest.raises(BadInput) as exc:
        propose(container, w, amount="2000.00")
    assert exc.value.field == "schedule"
    out = propose(container, w)
    far = dataclasses.replace(w["officer"], tenant_id=w["t"].id + 1000)
    with pytest.raises(NotFound):
        plan_decide_as(container, principal=far, plan_id=out["plan_id"], accept=True, note="", on=D)
    with container.uow() as s:  # a plan proposed without a request (before maker-checker): nobody can decide it
        plan = PaymentPlan(tenant_id=w["t"].id, case_id=w["case"], status="proposed", created_at=NOW,
                           schedule=[{"due_date": "2026-06-01", "amount": "10.00"}])
        s.add(plan)
        s.flush()
        legacy = plan.id
    with pytest.raises(Conflict, match="no approval request"):
        plan_decide_as(container, principal=w["officer"], plan_id=legacy, accept=True, note="", on=D)
