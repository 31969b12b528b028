"""The true cost of every loan (APR, Regulation Z Appendix J) and its legal cap (law/CATALOGUE.md §1c).

``loan_apr_run`` fills ``loan.apr`` for every loan that has none yet: the daily run calls it first,
so a newly imported loan is judged on its true annual cost from its first day (upfront fees, 砍头息,
raise the APR above the contract's nominal rate). The guard reads ``debt.annual_rate`` from
``loan.apr`` (``services/facts``, ``services/queue``): an over-cap or illegal debt is seen by the
guard's rules on the rate, the lender type and the LPR at signing.

Set-based: per range of loan ids, two queries fetch the loans without an APR (amounts in cents,
dates as day numbers) and their installments; ``domain.apr_matrix`` prices the whole range at once
with numpy — the same unit-period, (b)(5) counting and solver as the scalar ``compute_apr``, on any
dated schedule (a differential test holds them equal). The few schedules it does not model
(duplicate due dates, payments below the amount financed, a single payment a year or more out) go
through the scalar ``compute_apr``. A loan whose APR cannot be computed keeps ``apr`` NULL and is
counted as ``unavailable``; a loan without installments is not a candidate.

``loan_cost`` and ``loans_over_cap`` judge loans against the cap (``domain.costcap``): private and
unlicensed lenders — 4 x the one-year LPR at signing (SPC private-lending provisions arts 25, 29);
unlicensed above 36% actual APR — illegal lending (2019 SPC/SPP opinion); licensed lenders and
small-loan companies are not under that cap (a warning above 24%). Over-cap loans come with the
interest that may still be claimed.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, get_args

from sqlalchemy import and_, func, literal_column, or_, select, text
from sqlalchemy.orm import Session

from collectguard.adapters.db.models import Installment, Loan
from collectguard.adapters.db.types import RATE_SCALE
from collectguard.bootstrap import Container
from collectguard.domain.apr import Loan as AprLoan
from collectguard.domain.apr import Payment as AprPayment
from collectguard.domain.apr import compute_apr
from collectguard.domain.apr_matrix import apr_matrix
from collectguard.domain.costcap import DEFAULT_POLICY, ChargeSchedule, LenderType, assess_cost_cap
from collectguard.domain.delinquency import Installment as DomainInstallment
from collectguard.errors import BadInput
from collectguard.services.authz import Principal, ensure_visible, require, scope_tenant

__all__ = ["CAPPED", "CHUNK", "loan_apr_fill", "loan_apr_run", "loan_cost", "loans_over_cap"]

Progress = Callable[[str, int], Callable[[int], None]]

CHUNK = 50_000
#: Lender types under the 4 x LPR cap: the daily run prices these first (the guard judges their APR).
CAPPED = ("private", "unlicensed")


def _days(dialect: str, col: str) -> str:
    """A date column as whole days since 1970-01-01 (an integer: cheap to fetch, exact in numpy)."""
    if dialect == "sqlite":
        return f"CAST(julianday({col}) - 2440587.5 AS INTEGER)"
    return f"({col} - DATE '1970-01-01')"


def _sql(dialect: str, lender_types: tuple[str, ...] | None) -> tuple[str, str]:
    """The loans without an APR in an id window, and their installments (unsorted: numpy sorts)."""
    p = (lambda n: f":{n}") if dialect == "sqlite" else (lambda n: f"%({n})s")
    pending = f"l.apr IS NULL AND l.id >= {p('lo')} AND l.id < {p('hi')}"
    if lender_types:  # checked against LenderType by the caller (loan_apr_fill)
        pending += " AND l.lender_type IN (" + ", ".join(f"'{x}'" for x in lender_types) + ")"
    loans = f"""
SELECT l.id, l.principal, l.upfront_fees, {_days(dialect, 'l.disbursed_on')} FROM loan l
 WHERE {pending} AND EXISTS (SELECT 1 FROM installment x WHERE x.loan_id = l.id)"""  # noqa: S608
    installments = f"""
SELECT i.loan_id, {_days(dialect, 'i.due_date')}, i.principal_due + i.interest_due + i.fee_due, i.seq
  FROM installment i JOIN loan l ON l.id = i.loan_id WHERE {pending}"""  # noqa: S608
    return loans, installments


def _fetch(s: Session, sql: str, window: dict[str, int]) -> list[tuple[Any, ...]]:
    # The driver's cursor: plain tuples, without a result object per row (a million loans' schedules).
    cur = s.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cur.execute(sql, window)
        return list(cur.fetchall())
    finally:
        cur.close()


def _priced(loans: list[Any], installments: list[Any]) -> tuple[list[tuple[int, float]], list[int]]:
    """APRs of the loans whose schedules the matrix method models, and the ids left to the scalar one."""
    import numpy as np

    if not loans:
        return [], []
    lo = np.array(loans, dtype=np.int64).reshape(-1, 4)
    lo = lo[np.argsort(lo[:, 0])]
    ids = lo[:, 0]
    financed = (lo[:, 1] - lo[:, 2]) / 100  # cents -> yuan
    advance = lo[:, 3].astype("datetime64[D]")
    inst = np.array(installments, dtype=np.int64).reshape(-1, 4)
    inst = inst[np.lexsort((inst[:, 3], inst[:, 1], inst[:, 0]))]  # by loan, due date, seq
    row = np.searchsorted(ids, inst[:, 0])
    starts = np.searchsorted(inst[:, 0], ids)
    col = np.arange(len(inst)) - starts[row]
    width = int(col.max()) + 1 if len(inst) else 1
    dates = np.zeros((len(ids), width), dtype=np.int64).astype("datetime64[D]")
    amounts = np.zeros((len(ids), width))
    valid = np.zeros((len(ids), width), dtype=bool)
    dates[row, col] = inst[:, 1].astype("datetime64[D]")
    amounts[row, col] = inst[:, 2] / 100
    valid[row, col] = True
    percent, fallback = apr_matrix(advance, financed, dates, amounts, valid)
    done = [(int(i), float(a)) for i, a in zip(ids[~fallback], percent[~fallback], strict=True)]
    return done, [int(i) for i in ids[fallback]]


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


def loan_apr_fill(s: Session, *, progress: Progress | None = None,
                  lender_types: tuple[str, ...] | None = None) -> dict[str, int]:
    """Compute ``loan.apr`` for every loan without one (of ``lender_types``, when given), in the
    caller's transaction; returns counts. Idempotent: a rerun finds nothing to do.

    The daily run prices ``CAPPED`` lender types first thing: their true APR is what the guard's
    illegal-debt rule judges. ``collectguard costs price`` prices every loan.
    """
    import math

    counts = {"loans": 0, "vectorised": 0, "scalar": 0, "unavailable": 0}
    if lender_types and not set(lender_types) <= set(get_args(LenderType)):
        raise BadInput(f"expected lender types among {list(get_args(LenderType))}", field="lender_types")
    q = select(func.min(Loan.id), func.max(Loan.id)).where(Loan.apr.is_(None))
    top = s.execute(q.where(Loan.lender_type.in_(lender_types)) if lender_types else q).one()
    if top[0] is None:
        return counts
    start, end = int(top[0]), int(top[1]) + 1
    loans_sql, installments_sql = _sql(s.get_bind().dialect.name, lender_types)
    update = text("UPDATE loan SET apr = :apr WHERE id = :id AND apr IS NULL")
    advance = progress("costs", end - start) if progress is not None else None
    for lo in range(start, end, CHUNK):
        window = {"lo": lo, "hi": min(lo + CHUNK, end)}
        loans = _fetch(s, loans_sql, window)
        matrix, rest = _priced(loans, _fetch(s, installments_sql, window) if loans else [])
        scalar = _scalar(s, rest)
        values = [{"id": i, "apr": round(a * RATE_SCALE)} for i, a in matrix + scalar if not math.isnan(a)]
        if values:
            s.execute(update, values)
        counts["loans"] += len(loans)
        counts["vectorised"] += len(matrix)
        counts["scalar"] += len(scalar)
        counts["unavailable"] += len(loans) - len(values)
        if advance is not None:
            advance(min(lo + CHUNK, end) - lo)
    return counts


def loan_apr_run(c: Container, *, progress: Progress | None = None,
                 lender_types: tuple[str, ...] | None = None) -> dict[str, int]:
    """``loan_apr_fill`` in one unit of work of its own."""
    with c.uow() as s:
        return loan_apr_fill(s, progress=progress, lender_types=lender_types)


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
        out = {"loan_id": ln.id, "ext_id": ln.ext_id, "apr": None if ln.apr is None else str(ln.apr),
               "annual_rate": str(agreed), "lender_type": ln.lender_type, "status": "unknown", "reason": str(exc)}
        if ln.lender_type == "unlicensed" and actual > DEFAULT_POLICY.illegal_rate:
            # Illegal lending needs no LPR (2019 SPC/SPP opinion: unlicensed, actual APR above 36%);
            # what stays claimable does (4 x LPR), so it is left open.
            out.update(status="illegal", citations=[DEFAULT_POLICY.cite_illegal_lending],
                       cap_rate=str(DEFAULT_POLICY.illegal_rate), claimable_interest=None)
        return out
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
    over = or_(and_(Loan.lpr_at_signing.is_not(None), Loan.apr > Loan.lpr_at_signing * literal_column("4")),
               and_(Loan.lender_type == "unlicensed", Loan.apr > DEFAULT_POLICY.illegal_rate))
    with c.uow(write=False) as s:
        q = scope_tenant(select(Loan).where(Loan.lender_type.in_(CAPPED), Loan.apr.is_not(None),
                                            Loan.id > after_id, over)
                         .order_by(Loan.id).limit(limit), Loan, principal)
        items = [_verdict(s, ln) for ln in s.scalars(q)]
        last = items[-1]["loan_id"] if items else after_id
        return {"items": items, "next_after_id": last if len(items) >= limit else None}

