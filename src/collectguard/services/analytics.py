"""Recovery analytics over a date range: roll rates, cure rate, PTP-kept rate, recovered amount,
overall and by agency and collector (set-based SQL over the ledger the daily run keeps).

- **Roll rate** X→Y: loans that moved from bucket X to Y in the range (``bucket_history``)
  divided by the loans *exposed* to X: in X when the range began plus those that entered X
  during it. History holds every change after a loan's first run, so the bucket on a day is the
  ``to`` of the last change before it, else the ``from`` of the first change after it, else the
  loan's current bucket (it never changed).
- **Cure rate**: cases closed as ``cured`` in the range over the cases open at some time in it
  (``paid`` closures are counted apart).
- **PTP-kept rate**: kept promises over promises settled in the range.
- **Recovered**: payments dated in the range on a loan while it had an open case, attributed to
  whoever held the case that day (an agency, a collector, or nobody).
By holder, a case counts for whoever held it when it closed, or at the end of the range.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from collectguard.domain.delinquency import DEFAULT_BUCKETS, BucketScheme
from collectguard.errors import BadInput
from collectguard.services.daily_sql import dated

_AT_START = """
SELECT COALESCE(b.to_bucket, a.from_bucket, l.bucket), COUNT(*) FROM loan l
LEFT JOIN (SELECT h.loan_id, h.to_bucket FROM bucket_history h
           JOIN (SELECT loan_id, MAX(as_of) AS m FROM bucket_history WHERE as_of < :f GROUP BY loan_id) x
             ON x.loan_id = h.loan_id AND x.m = h.as_of) b ON b.loan_id = l.id
LEFT JOIN (SELECT h.loan_id, h.from_bucket FROM bucket_history h
           JOIN (SELECT loan_id, MIN(as_of) AS m FROM bucket_history WHERE as_of >= :f GROUP BY loan_id) x
             ON x.loan_id = h.loan_id AND x.m = h.as_of) a ON a.loan_id = l.id
WHERE l.tenant_id = :t AND l.disbursed_on < :f AND l.as_of IS NOT NULL
GROUP BY COALESCE(b.to_bucket, a.from_bucket, l.bucket)"""
_MOVES = """
SELECT h.from_bucket, h.to_bucket, COUNT(*) FROM bucket_history h JOIN loan l ON l.id = h.loan_id
WHERE l.tenant_id = :t AND h.as_of >= :f AND h.as_of <= :u GROUP BY h.from_bucket, h.to_bucket"""

# The holder of a case on a day: the assignment running that day (agency, collector) or nobody.
# An assignment that ended because the case closed still holds it on the closing day: the cure or
# payment that closed it is its holder's result.
_HOLDER = """LEFT JOIN case_assignment a ON a.case_id = c.id AND a.assigned_on <= {day}
  AND (a.ended_on IS NULL OR a.ended_on > {day} OR (a.ended_on = {day} AND a.end_reason = 'closed'))"""
# S608 below: only the fixed holder join is formatted in; values are bound.
_CASES = f"""
SELECT a.agency_tenant_id, a.user_id, COUNT(DISTINCT c.id),
       COUNT(DISTINCT CASE WHEN c.close_reason = 'cured' AND c.closed_on <= :u THEN c.id END),
       COUNT(DISTINCT CASE WHEN c.close_reason = 'paid' AND c.closed_on <= :u THEN c.id END)
FROM collection_case c {_HOLDER.format(day="COALESCE(c.closed_on, :u)")}
WHERE c.tenant_id = :t AND c.opened_on <= :u AND (c.closed_on IS NULL OR c.closed_on >= :f)
GROUP BY a.agency_tenant_id, a.user_id"""  # noqa: S608
_PTP = f"""
SELECT a.agency_tenant_id, a.user_id, t.status, COUNT(*)
FROM ptp t JOIN collection_case c ON c.id = t.case_id {_HOLDER.format(day="t.settled_on")}
WHERE t.tenant_id = :t AND t.settled_on >= :f AND t.settled_on <= :u
GROUP BY a.agency_tenant_id, a.user_id, t.status"""  # noqa: S608
_RECOVERED = f"""
SELECT a.agency_tenant_id, a.user_id, SUM(p.amount)
FROM payment p JOIN collection_case c ON c.loan_id = p.loan_id AND c.opened_on <= p.paid_on
                                      AND (c.closed_on IS NULL OR p.paid_on <= c.closed_on)
{_HOLDER.format(day="p.paid_on")}
WHERE c.tenant_id = :t AND p.paid_on >= :f AND p.paid_on <= :u
GROUP BY a.agency_tenant_id, a.user_id"""  # noqa: S608


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def recovery_analytics(s: Session, *, tenant_id: int, date_from: dt.date, date_to: dt.date,
                       buckets: BucketScheme = DEFAULT_BUCKETS) -> dict[str, Any]:
    """Roll rates, cure rate, PTP-kept rate and recovered amount of ``tenant_id`` over [from, to]."""
    if date_to < date_from:
        raise BadInput("'to' is before 'from'", field="to")
    if (date_to - date_from).days > 3660:
        raise BadInput("the range is at most ten years", field="to")
    p = {"t": tenant_id, "f": date_from, "u": date_to}
    exposure: dict[str, int] = defaultdict(int)
    for bucket, n in s.execute(dated(_AT_START), p):
        exposure[bucket] += int(n)
    moves = [(a, b, int(n)) for a, b, n in s.execute(dated(_MOVES), p)]
    for _a, b, n in moves:
        exposure[b] += n
    rolls: dict[str, dict[str, Any]] = {}
    for a, b, n in sorted(moves, key=lambda m: (buckets.names.index(m[0]) if m[0] in buckets.names else 99,
                                                 buckets.names.index(m[1]) if m[1] in buckets.names else 99)):
        entry = rolls.setdefault(a, {"exposure": exposure.get(a, 0), "to": {}})
        entry["to"][b] = {"loans": n, "rate": _rate(n, exposure.get(a, 0))}

    holders: dict[tuple[int | None, int | None], dict[str, Any]] = defaultdict(
        lambda: {"cases": 0, "cured": 0, "paid": 0, "ptp": {"kept": 0, "partial": 0, "broken": 0},
                 "recovered_cents": 0})
    for agency, user, cases, cured, paid in s.execute(dated(_CASES), p):
        h = holders[(agency, user)]
        h["cases"], h["cured"], h["paid"] = int(cases), int(cured), int(paid)
    for agency, user, status, n in s.execute(dated(_PTP), p):
        holders[(agency, user)]["ptp"][status] = int(n)
    for agency, user, cents in s.execute(dated(_RECOVERED), p):
        holders[(agency, user)]["recovered_cents"] = int(cents or 0)

    total = _sum(holders.values())
    by_agency, by_collector = [], []
    for (agency, user), h in sorted(holders.items(), key=lambda kv: (kv[0][0] or 0, kv[0][1] or 0)):
        if agency is not None:
            by_agency.append({"agency_tenant_id": agency, **_public(h)})
        elif user is not None:
            by_collector.append({"user_id": user, **_public(h)})
    return {"from": date_from.isoformat(), "to": date_to.isoformat(), "roll_rates": rolls,
            "exposure": dict(exposure), **_public(total), "by_agency": by_agency,
            "by_collector": by_collector}


def _sum(rows: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"cases": 0, "cured": 0, "paid": 0, "ptp": {"kept": 0, "partial": 0, "broken": 0},
                           "recovered_cents": 0}
    for h in rows:
        for k in ("cases", "cured", "paid", "recovered_cents"):
            out[k] += h[k]
        for k, v in h["ptp"].items():
            out["ptp"][k] = out["ptp"].get(k, 0) + v
    return out


def _public(h: dict[str, Any]) -> dict[str, Any]:
    settled = sum(h["ptp"].values())
    return {"cases": h["cases"], "cured": h["cured"], "paid": h["paid"],
            "cure_rate": _rate(h["cured"], h["cases"]),
            "ptp": {**h["ptp"], "kept_rate": _rate(h["ptp"].get("kept", 0), settled)},
            "recovered": str((Decimal(h["recovered_cents"]) / 100).quantize(Decimal("0.01")))}
