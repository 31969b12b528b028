"""Portfolio figures for the landing page and the dashboards (set-based SQL, integer cents)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

# Overdue amount of a loan = max(0, dues fallen due before D − payments up to D): payments are applied
# to the oldest installment first (DESIGN §13), so whatever was paid covers the oldest dues first.
_OVERDUE_SQL = """
SELECT COUNT(*) AS overdue_loans, COALESCE(SUM(d.due - COALESCE(p.paid, 0)), 0) AS overdue_cents
FROM (SELECT i.loan_id, SUM(i.principal_due + i.interest_due + i.fee_due) AS due
      FROM installment i JOIN loan l ON l.id = i.loan_id
      WHERE i.due_date < :d {tenant}
      GROUP BY i.loan_id) d
LEFT JOIN (SELECT loan_id, SUM(amount) AS paid FROM payment WHERE paid_on <= :d GROUP BY loan_id) p
       ON p.loan_id = d.loan_id
WHERE d.due > COALESCE(p.paid, 0)
"""


def portfolio_summary(session: Session, *, as_of: dt.date, tenant_id: int | None = None) -> dict[str, Any]:
    """Borrowers, loans, overdue loans and the overdue amount as of ``as_of``."""
    tf = " AND l.tenant_id = :t" if tenant_id is not None else ""
    params: dict[str, Any] = {"d": as_of, "t": tenant_id}
    borrowers = session.execute(
        text("SELECT COUNT(*) FROM borrower" + (" WHERE tenant_id = :t" if tenant_id is not None else "")),  # noqa: S608 - constant fragments, values bound
        params).scalar_one()
    loans = session.execute(
        text("SELECT COUNT(*), COALESCE(SUM(principal), 0) FROM loan l WHERE 1=1" + tf), params).one()  # noqa: S608
    overdue = session.execute(text(_OVERDUE_SQL.format(tenant=tf)), params).one()
    return {
        "as_of": as_of.isoformat(),
        "borrowers": int(borrowers),
        "loans": int(loans[0]),
        "principal": Decimal(int(loans[1])) / 100,
        "overdue_loans": int(overdue[0]),
        "overdue_amount": Decimal(int(overdue[1])) / 100,
    }
