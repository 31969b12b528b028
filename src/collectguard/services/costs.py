"""The true cost of every loan (APR, Regulation Z Appendix J) and its legal cap (law/CATALOGUE.md §1c).

``loan_apr_run`` fills ``loan.apr`` for every loan that has none yet: the daily run calls it first,
so a newly imported loan is judged on its true annual cost from its first day (upfront fees, 砍头息,
raise the APR above the contract's nominal rate). The guard reads ``debt.annual_rate`` from
``loan.apr`` (``services/facts``, ``services/queue``): an over-cap or illegal debt is seen by the
guard's rules on the rate, the lender type and the LPR at signing.

Set-based: per window of loan ids, the loans without an APR and their installments are read in
bulk (``services/costs_sql``: a few ``group_concat`` texts on SQLite, ``string_agg`` of binary
integers on PostgreSQL, decoded by numpy) and ``domain.apr_matrix`` prices them all at once,
grouped by installment count — the same unit-period, (b)(5) counting and solver as the scalar
``compute_apr``, on any dated schedule (a differential test holds them equal). The few schedules
it does not model (duplicate due dates, payments below the amount financed, a single payment a
year or more out) go through the scalar ``compute_apr``. The APRs go back in one statement per
window. Reading and writing (this thread, the session) overlap with decoding and pricing (a
worker thread, numpy only). A loan whose APR cannot be computed keeps ``apr`` NULL and is counted
as ``unavailable``; a loan without installments is not a candidate.

``loan_cost`` and ``loans_over_cap`` judge loans against the cap (``domain.costcap``): private and
unlicensed lenders — 4 x the one-year LPR at signing (SPC private-lending provisions arts 25, 29);
unlicensed above 36% actual APR — illegal lending (2019 SPC/SPP opinion); licensed lenders and
small-loan companies are not under that cap (a warning above 24%). Over-cap loans come with the
interest that may still be claimed.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from decimal import Decimal
from typing import TYPE_CHECKING, Any, get_args

from sqlalchemy import and_, literal_column, or_, select
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
from collectguard.services.costs_sql import UNREADABLE, Schedules, read_window, window_end, write_aprs

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    Ints = NDArray[np.int64]

__all__ = ["CAPPED", "CHUNK", "loan_apr_fill", "loan_apr_run", "loan_cost", "loans_over_cap"]

Progress = Callable[[str, int], Callable[[int], None]]

#: Loan ids per window (fewer when their schedules are long: ``costs_sql.window_end``). Each window
#: costs a few queries; smaller windows overlap reading, pricing and writing better (the first read
#: and the last write are not overlapped). SQLite, 1M loans of six installments: 250,000 → 9.3–12.6 s
#: and 570 MB, 50,000 → 8.1–9.5 s and 260 MB (BENCHMARKS.md).
CHUNK = {"sqlite": 50_000, "postgresql": 500_000}
#: Schedule cells (loans x installments) priced together: the matrix method's temporaries stay
#: a few MB each instead of growing with the window.
_BLOCK_CELLS = 1 << 19
#: Lender types under the 4 x LPR cap: the daily run prices these first (the guard judges their APR).
CAPPED = ("private", "unlicensed")


def _priced(b: Schedules) -> tuple[Ints, NDArray[np.float64], Ints, int]:
    """APRs (percent) of the loans whose schedules the matrix method models, the ids left to the
    scalar method, and how many loans have installments at all (the others are not candidates).

    Loans are priced in groups of equal installment count: a group's schedules are equal-width
    rows cut straight out of the sorted installments, and a loan's APR never depends on which
    other loans share its window (no padding columns in its sums).
    """
    import numpy as np

    ids = b.ids
    if not ids.size:
        return ids, np.zeros(0), ids, 0
    if (np.diff(ids) <= 0).any():
        by_id = np.argsort(ids, kind="stable")
        b = Schedules(ids[by_id], b.principal[by_id], b.fees[by_id], b.advance[by_id], b.loan_of, b.due, b.amount)
        ids = b.ids
    row = np.minimum(np.searchsorted(ids, b.loan_of), ids.size - 1)
    mine = ids[row] == b.loan_of  # the dense SQLite read brings other loans' installments too
    row, due, amount = row[mine], b.due[mine], b.amount[mine]
    # By loan, then due date (equal due dates are refused by the matrix method whatever their order).
    lowest = int(due.min()) if due.size else 0
    span = (int(due.max()) - lowest + 1) if due.size else 1
    order: Ints | None = None
    if ids.size * span >= 2**62:
        order = np.lexsort((due, row))
    elif (np.diff(key := row * span + (due - lowest)) < 0).any():
        order = np.argsort(key, kind="stable")
    if order is not None:
        row, due, amount = row[order], due[order], amount[order]
    counts = np.bincount(row, minlength=ids.size)
    starts = np.cumsum(counts) - counts
    unreadable = (b.advance == UNREADABLE) | (np.bincount(row, weights=due == UNREADABLE, minlength=ids.size) > 0)
    financed = (b.principal - b.fees) / 100  # cents -> yuan, as the scalar Decimal amounts
    percent = np.full(ids.size, np.nan)
    for width in np.unique(counts[counts > 0]):
        group = np.flatnonzero((counts == width) & ~unreadable)
        step = max(1, _BLOCK_CELLS // int(width))
        for rows in (group[k : k + step] for k in range(0, group.size, step)):
            cells = starts[rows][:, None] + np.arange(width)
            percent[rows], _ = apr_matrix(
                b.advance[rows], financed[rows], due[cells], amount[cells] / 100, np.ones(cells.shape, dtype=bool)
            )
    candidate = counts > 0
    done = candidate & np.isfinite(percent)
    return ids[done], percent[done], ids[candidate & ~done], int(candidate.sum())


def _decode_and_price(decode: Callable[[], Schedules]) -> tuple[Ints, NDArray[np.float64], Ints, int]:
    return _priced(decode())


def _scalar(s: Session, ids: list[int]) -> list[tuple[int, float]]:
    """APRs of irregular schedules, one loan at a time (few: most portfolios are regular)."""
    out: list[tuple[int, float]] = []
    for i in range(0, len(ids), 1000):
        part = ids[i : i + 1000]
        loans = {ln.id: ln for ln in s.scalars(select(Loan).where(Loan.id.in_(part)))}
        sched: dict[int, list[AprPayment]] = {}
        for inst in s.scalars(
            select(Installment).where(Installment.loan_id.in_(part)).order_by(Installment.loan_id, Installment.seq)
        ):
            total = inst.principal_due + inst.interest_due + inst.fee_due
            sched.setdefault(inst.loan_id, []).append(AprPayment(on=inst.due_date, amount=total))
        for lid, ln in loans.items():
            try:
                res = compute_apr(
                    AprLoan(
                        advance=ln.principal,
                        advance_date=ln.disbursed_on,
                        payments=tuple(sched.get(lid, ())),
                        upfront_fees=ln.upfront_fees,
                    )
                )
            except BadInput:
                continue
            out.append((lid, res.apr))
    return out


def loan_apr_fill(
    s: Session, *, progress: Progress | None = None, lender_types: tuple[str, ...] | None = None
) -> dict[str, int]:
    """Compute ``loan.apr`` for every loan without one (of ``lender_types``, when given), in the
    caller's transaction; returns counts. Idempotent: a rerun finds nothing to do.

    The daily run prices ``CAPPED`` lender types first thing: their true APR is what the guard's
    illegal-debt rule judges. ``collectguard costs price`` prices every loan.
    """
    import numpy as np

    counts = {"loans": 0, "vectorised": 0, "scalar": 0, "unavailable": 0}
    if lender_types and not set(lender_types) <= set(get_args(LenderType)):
        raise BadInput(f"expected lender types among {list(get_args(LenderType))}", field="lender_types")
    # The first and the last loan to price, each by an ordered LIMIT 1: found at once when most
    # loans are to be priced (min and max together would read the whole table).
    q = select(Loan.id).where(Loan.apr.is_(None)).limit(1)
    q = q.where(Loan.lender_type.in_(lender_types)) if lender_types else q
    first = s.scalar(q.order_by(Loan.id))
    if first is None:
        return counts
    last = s.scalar(q.order_by(Loan.id.desc()))
    start, end = int(first), int(last if last is not None else first) + 1
    chunk = CHUNK.get(s.get_bind().dialect.name, CHUNK["sqlite"])
    advance = progress("costs", end - start) if progress is not None else None

    def finish(window: dict[str, int], priced: Future[tuple[Ints, NDArray[np.float64], Ints, int]]) -> None:
        ids, percent, rest, loans = priced.result()
        scalar = _scalar(s, [int(i) for i in rest])
        if scalar:
            ids = np.concatenate([ids, np.array([i for i, _ in scalar], dtype=np.int64)])
            percent = np.concatenate([percent, np.array([a for _, a in scalar])])
        keep = ~np.isnan(percent)
        # round(a * RATE_SCALE) as Python rounds a float: half to even, as numpy's rint.
        write_aprs(s, window, ids[keep], np.rint(percent[keep] * RATE_SCALE).astype(np.int64))
        counts["loans"] += loans
        counts["vectorised"] += len(ids) - len(scalar)
        counts["scalar"] += len(scalar)
        counts["unavailable"] += loans - int(keep.sum())
        if advance is not None:
            advance(window["hi"] - window["lo"])

    # A pipeline of two: while one thread decodes and prices a window (numpy, which lets go of the
    # GIL), this one reads the next and writes the previous (the database driver lets go of it
    # too). Only this thread touches the session.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="apr") as pool:
        previous = None
        lo = start
        while lo < end:
            window = {"lo": lo, "hi": window_end(s, lo, end, chunk)}
            lo = window["hi"]
            decode = read_window(s, window, lender_types)
            priced = pool.submit(_decode_and_price, decode)
            if previous is not None:
                finish(*previous)
            previous = (window, priced)
        if previous is not None:
            finish(*previous)
    return counts


def loan_apr_run(
    c: Container, *, progress: Progress | None = None, lender_types: tuple[str, ...] | None = None
) -> dict[str, int]:
    """``loan_apr_fill`` in one unit of work of its own."""
    with c.uow() as s:
        return loan_apr_fill(s, progress=progress, lender_types=lender_types)


def _verdict(s: Session, ln: Loan) -> dict[str, Any]:
    installments = [
        DomainInstallment(
            seq=i.seq,
            due_date=i.due_date,
            principal_due=i.principal_due,
            interest_due=i.interest_due,
            fee_due=i.fee_due,
        )
        for i in s.scalars(select(Installment).where(Installment.loan_id == ln.id).order_by(Installment.seq))
    ]
    agreed = ln.annual_rate
    actual = ln.apr if ln.apr is not None else agreed
    schedule = (
        ChargeSchedule(
            principal=ln.principal,
            disbursed_on=ln.disbursed_on,
            installments=installments,
            upfront_fees=ln.upfront_fees,
        )
        if installments
        else None
    )
    try:
        verdict = assess_cost_cap(
            lender_type=ln.lender_type,
            agreed_rate=agreed,
            lpr_at_signing=ln.lpr_at_signing,
            fee_rate=max(actual - agreed, Decimal(0)),
            actual_apr=actual,
            signed_on=ln.disbursed_on,
            schedule=schedule,
        )
    except BadInput as exc:  # e.g. a private loan stored without its LPR: say so rather than guess
        out = {
            "loan_id": ln.id,
            "ext_id": ln.ext_id,
            "apr": None if ln.apr is None else str(ln.apr),
            "annual_rate": str(agreed),
            "lender_type": ln.lender_type,
            "status": "unknown",
            "reason": str(exc),
        }
        if ln.lender_type == "unlicensed" and actual > DEFAULT_POLICY.illegal_rate:
            # Illegal lending needs no LPR (2019 SPC/SPP opinion: unlicensed, actual APR above 36%);
            # what stays claimable does (4 x LPR), so it is left open.
            out.update(
                status="illegal",
                citations=[DEFAULT_POLICY.cite_illegal_lending],
                cap_rate=str(DEFAULT_POLICY.illegal_rate),
                claimable_interest=None,
            )
        return out
    return {
        "loan_id": ln.id,
        "ext_id": ln.ext_id,
        "apr": None if ln.apr is None else str(ln.apr),
        "annual_rate": str(agreed),
        **verdict.to_dict(),
    }


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
    over = or_(
        and_(Loan.lpr_at_signing.is_not(None), Loan.apr > Loan.lpr_at_signing * literal_column("4")),
        and_(Loan.lender_type == "unlicensed", Loan.apr > DEFAULT_POLICY.illegal_rate),
    )
    with c.uow(write=False) as s:
        q = scope_tenant(
            select(Loan)
            .where(Loan.lender_type.in_(CAPPED), Loan.apr.is_not(None), Loan.id > after_id, over)
            .order_by(Loan.id)
            .limit(limit),
            Loan,
            principal,
        )
        items = [_verdict(s, ln) for ln in s.scalars(q)]
        last = items[-1]["loan_id"] if items else after_id
        return {"items": items, "next_after_id": last if len(items) >= limit else None}
