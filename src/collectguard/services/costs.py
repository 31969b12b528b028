"""The true cost of every loan (APR, Regulation Z Appendix J) and its legal cap (law/CATALOGUE.md §1c).

``loan_apr_run`` fills ``loan.apr`` for every loan that has none yet: the daily run calls it first,
so a newly imported loan is judged on its true annual cost from its first day (upfront fees, 砍头息,
raise the APR above the contract's nominal rate). The guard reads ``debt.annual_rate`` from
``loan.apr`` (``services/facts``, ``services/queue``): an over-cap or illegal debt is seen by the
guard's rules on the rate, the lender type and the LPR at signing.

Set-based: per range of loan ids one aggregate query gives each loan's installment count, the
smallest and largest installment total, first and last due date and the spread of the due dates'
day of month; every loan whose schedule is *regular* (equal installments, monthly on one day of
the month up to the 28th, at least 3 payments so that the month is the unit-period of
Appendix J (b)(4)) gets its APR from the vectorised ``domain.apr.apr_batch``, which is
exactly the scalar answer for such schedules. The rest (irregular, weekly, single-payment) go
through the scalar ``compute_apr`` with their full schedule. A loan whose APR cannot be computed
(e.g. no installment after the disbursement) keeps ``apr`` NULL and is counted as ``unavailable``.

``loan_cost`` and ``loans_over_cap`` judge loans against the cap (``domain.costcap``): private and
unlicensed lenders — 4 x the one-year LPR at signing (SPC private-lending provisions arts 25, 29);
unlicensed above 36% actual APR — illegal lending (2019 SPC/SPP opinion); licensed lenders and
small-loan companies are not under that cap (a warning above 24%). Over-cap loans come with the
interest that may still be claimed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, literal_column, or_, select, text
from sqlalchemy.orm import Session

from collectguard.adapters.db.models import Installment, Loan
from collectguard.adapters.db.types import RATE_SCALE
from collectguard.bootstrap import Container
from collectguard.domain.apr import Loan as AprLoan
from collectguard.domain.apr import Payment as AprPayment
from collectguard.domain.apr import apr_batch, compute_apr
from collectguard.domain.costcap import ChargeSchedule, assess_cost_cap
from collectguard.domain.delinquency import Installment as DomainInstallment
from collectguard.errors import BadInput
from collectguard.services.authz import Principal, ensure_visible, require, scope_tenant

__all__ = ["CHUNK", "loan_apr_fill", "loan_apr_run", "loan_cost", "loans_over_cap"]

Progress = Callable[[str, int], Callable[[int], None]]

CHUNK = 50_000
_CAPPED = ("private", "unlicensed")


def _dom(dialect: str, col: str) -> str:
    return f"CAST(strftime('%d', {col}) AS INTEGER)" if dialect == "sqlite" else f"EXTRACT(DAY FROM {col})"


def _stats_sql(dialect: str) -> str:
    total = "(i.principal_due + i.interest_due + i.fee_due)"
    return f"""
SELECT l.id, l.principal, l.upfront_fees, l.disbursed_on, COUNT(*) AS n, COUNT(DISTINCT i.due_date) AS nd,
       MIN({total}) AS lo, MAX({total}) AS hi, MIN(i.due_date) AS first, MAX(i.due_date) AS last,
       MIN({_dom(dialect, 'i.due_date')}) AS dmin, MAX({_dom(dialect, 'i.due_date')}) AS dmax
  FROM loan l JOIN installment i ON i.loan_id = l.id
 WHERE l.apr IS NULL AND l.id >= :lo AND l.id < :hi
 GROUP BY l.id, l.principal, l.upfront_fees, l.disbursed_on"""  # noqa: S608 - fixed expressions only


def _day(v: Any) -> dt.date:
    return dt.date.fromisoformat(v) if isinstance(v, str) else v


def _regular(rows: list[Any]) -> tuple[list[tuple[int, float]], list[int]]:
    """APRs of the regular loans in ``rows`` (vectorised) and the ids that need the scalar path."""
    import numpy as np

    if not rows:
        return [], []
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    adv = np.array([r[1] for r in rows], dtype=np.int64)
    fees = np.array([r[2] for r in rows], dtype=np.int64)
    n = np.array([r[4] for r in rows], dtype=np.int64)
    nd = np.array([r[5] for r in rows], dtype=np.int64)
    lo = np.array([r[6] for r in rows], dtype=np.int64)
    hi = np.array([r[7] for r in rows], dtype=np.int64)
    disbursed = np.array([_day(r[3]) for r in rows], dtype="datetime64[D]")
    first = np.array([_day(r[8]) for r in rows], dtype="datetime64[D]")
    last = np.array([_day(r[9]) for r in rows], dtype="datetime64[D]")
    dmin = np.array([int(r[10]) for r in rows], dtype=np.int64)
    dmax = np.array([int(r[11]) for r in rows], dtype=np.int64)
    months = last.astype("datetime64[M]").astype(np.int64) - first.astype("datetime64[M]").astype(np.int64)
    regular = ((lo == hi) & (nd == n) & (n >= 3) & (dmin == dmax) & (dmin <= 28) & (months == n - 1)
               & (first > disbursed) & (adv > fees) & (lo > 0))
    out: list[tuple[int, float]] = []
    if regular.any():
        aprs = apr_batch(advance=adv[regular], upfront_fees=fees[regular], count=n[regular], amount=lo[regular],
                         unit_period="month", advance_date=disbursed[regular], first_date=first[regular],
                         on_invalid="nan")
        out = [(int(i), float(a)) for i, a in zip(ids[regular], aprs, strict=True)]
    return out, [int(i) for i in ids[~regular]]


def _scalar(s: Session, ids: list[int]) -> list[tuple[int, float]]:
    """APRs of irregular schedules, one loan at a time (few: most portfolios are regular)."""
    out: list[tuple[int, float]] = []
    for i in range(0, len(ids), 1000):
        part = ids[i:i + 1000]
        loans = {ln.id: ln for ln in s.scalars(select(Loan).where(Loan.id.in_(part)))}
        sched: dict[int, list[AprPayment]] = {}
        for inst in s.scalars(select(Installment).where(Installment.loan_id.in_(part))
                              .order_by(Installment.loan_id, Installment.seq)):
            total = inst.principal_due + inst.interest_due + inst.fee_due
            sched.setdefault(inst.loan_id, []).append(AprPayment(on=inst.due_date, amount=total))
        for lid, ln in loans.items():
            try:
                res = compute_apr(AprLoan(advance=ln.principal, advance_date=ln.disbursed_on,
                                          payments=tuple(sched.get(lid, ())), upfront_fees=ln.upfront_fees))
            except BadInput:
                continue
            out.append((lid, res.apr))
    return out


def loan_apr_fill(s: Session, *, progress: Progress | None = None) -> dict[str, int]:
    """Compute ``loan.apr`` for every loan without one, in the caller's transaction; returns counts.

    Idempotent: a rerun finds nothing to do. The daily run calls it as its first stage.
    """
    import math

    counts = {"loans": 0, "regular": 0, "irregular": 0, "unavailable": 0}
    top = s.execute(text("SELECT MIN(id), MAX(id) FROM loan WHERE apr IS NULL")).one()
    if top[0] is None:
        return counts
    start, end = int(top[0]), int(top[1]) + 1
    sql = text(_stats_sql(s.get_bind().dialect.name))
    update = text("UPDATE loan SET apr = :apr WHERE id = :id AND apr IS NULL")
    advance = progress("costs", end - start) if progress is not None else None
    for lo in range(start, end, CHUNK):
        rows = list(s.execute(sql, {"lo": lo, "hi": min(lo + CHUNK, end)}))
        regular, rest = _regular(rows)
        scalar = _scalar(s, rest)
        values = [{"id": i, "apr": round(a * RATE_SCALE)} for i, a in regular + scalar if not math.isnan(a)]
        if values:
            s.execute(update, values)
        counts["loans"] += len(rows)
        counts["regular"] += sum(1 for _, a in regular if not math.isnan(a))
        counts["irregular"] += len(scalar)
        counts["unavailable"] += len(rows) - len(values)
        if advance is not None:
            advance(min(lo + CHUNK, end) - lo)
    return counts


def loan_apr_run(c: Container, *, progress: Progress | None = None) -> dict[str, int]:
    """``loan_apr_fill`` in one unit of work of its own."""
    with c.uow() as s:
        return loan_apr_fill(s, progress=progress)


def _verdict(s: Session, ln: Loan) -> dict[str, Any]:
    installments = [DomainInstallment(seq=i.seq, due_date=i.due_date, principal_due=i.principal_due,
                                      interest_due=i.interest_due, fee_due=i.fee_due)
                    for i in s.scalars(select(Installment).where(Installment.loan_id == ln.id)
                                       .order_by(Installment.seq))]
    agreed = ln.annual_rate
    actual = ln.apr if ln.apr is not None else agreed
    schedule = ChargeSchedule(principal=ln.principal, disbursed_on=ln.disbursed_on, installments=installments,
                              upfront_fees=ln.upfront_fees) if installments else None
    try:
        verdict = assess_cost_cap(lender_type=ln.lender_type, agreed_rate=agreed, lpr_at_signing=ln.lpr_at_signing,
                                  fee_rate=max(actual - agreed, Decimal(0)), actual_apr=actual,
                                  signed_on=ln.disbursed_on, schedule=schedule)
    except BadInput as exc:  # e.g. a private loan stored without its LPR: say so rather than guess
        return {"loan_id": ln.id, "ext_id": ln.ext_id, "status": "unknown", "reason": str(exc)}
    return {"loan_id": ln.id, "ext_id": ln.ext_id, "apr": None if ln.apr is None else str(ln.apr),
            "annual_rate": str(agreed), **verdict.to_dict()}


def loan_cost(c: Container, *, principal: Principal, loan_id: int) -> dict[str, Any]:
    """One loan's APR and cost-cap verdict with the claimable interest."""
    require(principal, "loan.read")
    with c.uow(write=False) as s:
        ln = ensure_visible(s.get(Loan, loan_id), principal, session=s)
        return _verdict(s, ln)


def loans_over_cap(c: Container, *, principal: Principal, limit: int = 100, after_id: int = 0) -> dict[str, Any]:
    """Loans of capped lender types whose true APR is above 4 x LPR (or unlicensed above 36%), by id."""
    require(principal, "loan.read")
    if not 1 <= limit <= 1000:
        raise BadInput("must be between 1 and 1000", field="limit")
    # Both rates are stored with the same scale, so 4 x LPR compares in SQL (an unbound 4: not a Rate).
    over = or_(Loan.apr > Loan.lpr_at_signing * literal_column("4"),
               and_(Loan.lender_type == "unlicensed", Loan.apr > Decimal(36)))
    with c.uow(write=False) as s:
        q = scope_tenant(select(Loan).where(Loan.lender_type.in_(_CAPPED), Loan.apr.is_not(None),
                                            Loan.lpr_at_signing.is_not(None), Loan.id > after_id, over)
                         .order_by(Loan.id).limit(limit), Loan, principal)
        items = [_verdict(s, ln) for ln in s.scalars(q)]
        last = items[-1]["loan_id"] if items else after_id
        return {"items": items, "next_after_id": last if len(items) >= limit else None}

