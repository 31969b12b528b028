"""Seed helpers for the ledger tests (daily run, queue, outcomes, analytics): no tests of its own.

Random portfolios mix the shapes DESIGN §13 has to get right: partial payments, lump payments
covering several installments, overpayments, payments dated after the as-of date, installments
whose seq order differs from their due-date order, zero-due installments, loans without
installments and loans disbursed after the as-of date.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, text

from collectguard.adapters.db.models import Borrower, Installment, Loan, Payment, Tenant
from collectguard.domain import delinquency as dq

D = dt.date(2026, 4, 7)  # the fixtures' clock says 2026-04-07 10:00 in Beijing
NOW = dt.datetime(2026, 4, 7, 2, 0, tzinfo=dt.UTC)


@dataclass
class LoanSpec:
    disbursed_on: dt.date
    installments: list[tuple[int, dt.date, Decimal, Decimal, Decimal]] = field(default_factory=list)
    payments: list[tuple[dt.date, Decimal]] = field(default_factory=list)
    borrower: int = 0  # index into the borrowers seeded with the portfolio
    lender_type: str = "licensed_institution"
    annual_rate: Decimal = Decimal("18")


def tenant(s: Any, code: str = "lender-1", kind: str = "lender", name: str = "示例金融") -> Tenant:
    row = s.scalar(select(Tenant).where(Tenant.code == code))
    if row is None:
        row = Tenant(code=code, name=name, kind=kind, licensed=True, created_at=NOW)
        s.add(row)
        s.flush()
    return row


def seed(
    c: Any,
    loans: list[LoanSpec],
    *,
    tenant_code: str = "lender-1",
    borrowers: int | None = None,
    jurisdiction: str = "CN",
    timezone: str = "Asia/Shanghai",
    language: str = "zh-CN",
) -> list[int]:
    """Insert borrowers and the loans; returns the loan ids in the order given."""
    n_b = borrowers or max((spec.borrower for spec in loans), default=0) + 1
    with c.uow() as s:
        t = tenant(s, tenant_code)
        b_ids = []
        for i in range(n_b):
            b = Borrower(
                tenant_id=t.id,
                ext_id=f"{tenant_code}-B{i}",
                name_enc=b"x",
                phone_enc=b"x",
                phone_hmac=f"{tenant_code}-h{i}",
                jurisdiction=jurisdiction,
                timezone=timezone,
                language=language,
                status="active",
                created_at=NOW,
            )
            s.add(b)
            s.flush()
            b_ids.append(b.id)
        ids = []
        base = s.scalar(text("SELECT COUNT(*) FROM loan")) or 0
        for n, spec in enumerate(loans):
            loan = Loan(
                tenant_id=t.id,
                ext_id=f"{tenant_code}-L{base + n}",
                borrower_id=b_ids[spec.borrower],
                product="cash",
                lender_type=spec.lender_type,
                principal=Decimal(1000),
                currency="CNY",
                annual_rate=spec.annual_rate,
                upfront_fees=Decimal(0),
                disbursed_on=spec.disbursed_on,
                lpr_at_signing=Decimal("3.45"),
                created_at=NOW,
            )
            s.add(loan)
            s.flush()
            ids.append(loan.id)
        inst = [
            {"loan_id": lid, "seq": q, "due_date": d, "principal_due": p, "interest_due": i, "fee_due": f}
            for lid, spec in zip(ids, loans, strict=True)
            for q, d, p, i, f in spec.installments
        ]
        pays = [
            {"loan_id": lid, "paid_on": d, "amount": a, "created_at": NOW}
            for lid, spec in zip(ids, loans, strict=True)
            for d, a in spec.payments
        ]
        if inst:
            s.execute(insert(Installment), inst)
        if pays:
            s.execute(insert(Payment), pays)
    return ids


def simple_loan(
    *,
    overdue_days: int = 0,
    paid_installments: int = 0,
    n: int = 6,
    amount: str = "100",
    disbursed_days_ago: int = 200,
    borrower: int = 0,
) -> LoanSpec:
    """A loan whose oldest unpaid installment fell due ``overdue_days`` ago (0: nothing overdue)."""
    first_due = D - dt.timedelta(days=overdue_days) if overdue_days else D + dt.timedelta(days=5)
    first_due -= dt.timedelta(days=30 * paid_installments)
    rows = [
        (k + 1, first_due + dt.timedelta(days=30 * k), Decimal(amount), Decimal(0), Decimal(0))
        for k in range(n)
    ]
    pays = [(first_due, Decimal(amount) * paid_installments)] if paid_installments else []
    return LoanSpec(
        disbursed_on=D - dt.timedelta(days=disbursed_days_ago),
        installments=rows,
        payments=pays,
        borrower=borrower,
    )


def random_portfolio(rng: random.Random, n: int) -> list[LoanSpec]:
    """``n`` loans of every awkward shape, around the as-of date ``D``."""
    out = []
    for _ in range(n):
        disbursed = D + dt.timedelta(days=rng.randint(-420, 8))  # a few after D: left out of the run
        k = rng.choice([0, 1, 3, 6, 6, 6, 12])
        rows = []
        for q in range(1, k + 1):
            due = disbursed + dt.timedelta(days=30 * q + rng.choice([0, 0, 0, -3, 5]))
            fee = Decimal(rng.choice([0, 0, 5]))
            principal = Decimal(rng.choice([0, 100, 100, 250])) + Decimal(rng.randint(0, 99)) / 100
            rows.append((q, due, principal, Decimal(rng.randint(0, 30)), fee))
        if k > 2 and rng.random() < 0.1:  # seq order differs from due-date order
            a, b = rows[0], rows[1]
            rows[0], rows[1] = (a[0], b[1], *a[2:]), (b[0], a[1], *b[2:])
        total = sum((r[2] + r[3] + r[4] for r in rows), Decimal(0))
        pays = []
        for _p in range(rng.choice([0, 1, 1, 2, 3])):
            when = disbursed + dt.timedelta(days=rng.randint(0, 450))
            kind = rng.random()
            if kind < 0.3 and total:  # a partial payment
                amount = (total * Decimal(rng.randint(1, 40)) / 100).quantize(Decimal("0.01"))
            elif kind < 0.6:  # a lump covering several installments
                amount = sum((r[2] + r[3] + r[4] for r in rows[: rng.randint(1, max(1, k))]), Decimal(0))
            elif kind < 0.7:  # an overpayment
                amount = total + Decimal("50.00")
            else:
                amount = Decimal(rng.randint(1, 30000)) / 100
            if amount > 0:
                pays.append((when, amount))
        out.append(
            LoanSpec(
                disbursed_on=disbursed,
                installments=rows,
                payments=pays,
                borrower=rng.randint(0, max(0, n // 3)),
            )
        )
    return out


def oracle(spec: LoanSpec, as_of: dt.date = D) -> dq.Delinquency | None:
    """The pure domain answer for one loan (None: disbursed after ``as_of``, not in the run)."""
    if spec.disbursed_on > as_of:
        return None
    inst = [
        dq.Installment(seq=q, due_date=d, principal_due=p, interest_due=i, fee_due=f)
        for q, d, p, i, f in spec.installments
    ]
    pays = [dq.Payment(paid_on=d, amount=a) for d, a in spec.payments]
    return dq.assess_delinquency(inst, pays, as_of=as_of)


def snapshot(
    c: Any,
    tables: tuple[str, ...] = (
        "loan",
        "bucket_history",
        "collection_case",
        "ptp",
        "payment_plan",
        "work_item",
        "case_assignment",
        "daily_run",
        "audit_record",
    ),
) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables the daily run writes, in a stable order."""
    out = {}
    with c.uow(write=False) as s:
        for t in tables:
            out[t] = [tuple(r) for r in s.execute(text(f"SELECT * FROM {t} ORDER BY id"))]
    return out


# Table projections that do not depend on ids a rolled-back sequence may have used (PostgreSQL
# does not give sequence numbers back), nor on timings.
SEMANTIC = {
    "loan": "SELECT id, dpd, bucket, outstanding, overdue_amount, debt_status, as_of FROM loan ORDER BY id",
    "bucket_history": "SELECT loan_id, as_of, from_bucket, to_bucket FROM bucket_history "
    "ORDER BY loan_id, as_of",
    "collection_case": "SELECT loan_id, status, bucket, dpd, opened_on, closed_on, close_reason, "
    "paused_reason, "
    "assignee_user_id, agency_tenant_id FROM collection_case ORDER BY loan_id, opened_on",
    "work_item": "SELECT w.as_of, c.loan_id, w.step, w.recipient_key, w.channel, w.local_time, w.planned_at, "
    "w.status, w.pack FROM work_item w JOIN collection_case c ON c.id = w.case_id "
    "ORDER BY w.as_of, c.loan_id, w.step, w.recipient_key",
    "ptp": "SELECT id, status, settled_on FROM ptp ORDER BY id",
    "daily_run": "SELECT as_of, status FROM daily_run ORDER BY as_of",
    "audit": "SELECT chain, seq, action, subject, payload, hash FROM audit_record ORDER BY chain, seq",
}


def semantic_snapshot(c: Any) -> dict[str, list[tuple[Any, ...]]]:
    with c.uow(write=False) as s:
        return {k: [tuple(r) for r in s.execute(text(q))] for k, q in SEMANTIC.items()}


def without_seconds(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k != "seconds"}
