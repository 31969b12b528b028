"""CSV import of debts: loans, their installment schedules and payments received (DESIGN §9)."""

from __future__ import annotations

from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy import select

from collectguard.adapters.db.models import Installment, Loan
from collectguard.domain import validation as v
from collectguard.services.import_common import (
    LOOKUP_CHUNK,
    Batch,
    Cells,
    Row,
    Ticker,
    chunked,
    existing_borrowers,
    existing_ext_ids,
    existing_loans,
    first_seen,
)

ZERO = Decimal(0)


def _missing_loan(ext: str) -> str:
    return f"no loan {ext!r} for this tenant (import the loans first)"


def prepare_loans(batch: Batch, rows: list[Row], ticker: Ticker) -> list[dict[str, Any]]:
    """Validate loan rows: borrower known, new loan_id, amounts and rates exact, LPR for private lenders."""
    borrowers = existing_borrowers(batch, (vals.get("borrower_id", "").strip() for _, vals in rows))
    out: list[dict[str, Any]] = []
    keys: list[tuple[int, str]] = []
    lender_types = partial(v.choice, allowed=v.LENDER_TYPES)
    currencies = partial(v.choice, allowed=v.CURRENCIES)
    positive = partial(v.amount, positive=True)
    past_date = partial(v.iso_date, not_after=batch.today)
    for line, values in rows:
        c = Cells(batch, line, values)
        ext = c.get("loan_id", v.ext_id)
        b_ext = c.get("borrower_id", v.ext_id)
        lender_type = c.get("lender_type", lender_types)
        principal = c.get("principal", positive)
        currency = c.get("currency", currencies)
        rate = c.get("annual_rate", v.rate_percent)
        fees = c.opt("upfront_fees", v.amount, ZERO)
        disbursed = c.get("disbursed_on", past_date)
        lpr = c.opt("lpr_at_signing", v.rate_percent)
        borrower = borrowers.get(b_ext) if b_ext else None
        if b_ext and borrower is None:
            c.fail("borrower_id", f"no borrower {b_ext!r} for this tenant (import the borrowers first)")
        if principal is not None and fees is not None and fees >= principal:
            c.fail("upfront_fees", "upfront fees are not less than the principal")
        if lender_type == "private" and lpr is None and not c.raw("lpr_at_signing"):
            # The cap for private lending is 4 × the LPR at signing: without it the guard cannot judge.
            c.fail("lpr_at_signing", "required for private lenders (the rate cap is 4 × the LPR at signing)")
        if ext:
            keys.append((line, ext))
        ticker.tick()
        if not c.ok or batch.errors:
            continue
        assert borrower
        out.append({
            "tenant_id": batch.tenant_id, "ext_id": ext, "borrower_id": borrower[0], "product": "",
            "lender_type": lender_type, "principal": principal, "currency": currency, "annual_rate": rate,
            "upfront_fees": fees, "disbursed_on": disbursed, "lpr_at_signing": lpr, "dpd": 0, "bucket": "M0",
            "debt_status": "valid", "created_at": batch.now,
        })
    first_seen(batch, keys, column="loan_id", what="this loan_id")
    taken = existing_ext_ids(batch, Loan, (k for _, k in keys))
    for line, ext in keys:
        if ext in taken:
            batch.bad(line, "loan_id", f"loan {ext!r} already exists for this tenant")
    return out


def _existing_seqs(batch: Batch, loan_ids: set[int]) -> set[tuple[int, int]]:
    found: set[tuple[int, int]] = set()
    for chunk in chunked(sorted(loan_ids), LOOKUP_CHUNK):
        q = select(Installment.loan_id, Installment.seq).where(Installment.loan_id.in_(chunk))
        found.update((lid, seq) for lid, seq in batch.session.execute(q))
    return found


def prepare_installments(batch: Batch, rows: list[Row], ticker: Ticker) -> list[dict[str, Any]]:
    """Validate installment rows: loan known, (loan_id, seq) new, due no earlier than disbursement."""
    loans = existing_loans(batch, (vals.get("loan_id", "").strip() for _, vals in rows))
    out: list[dict[str, Any]] = []
    keys: list[tuple[int, tuple[str, int]]] = []
    for line, values in rows:
        c = Cells(batch, line, values)
        l_ext = c.get("loan_id", v.ext_id)
        seq = c.get("seq", v.positive_int)
        due = c.get("due_date", v.iso_date)
        principal = c.get("principal_due", v.amount)
        interest = c.get("interest_due", v.amount)
        fee = c.opt("fee_due", v.amount, ZERO)
        loan = loans.get(l_ext) if l_ext else None
        if l_ext and loan is None:
            c.fail("loan_id", _missing_loan(l_ext))
        if loan and due and due < loan[1]:
            c.fail("due_date", f"due before the loan was disbursed ({loan[1].isoformat()})")
        if l_ext and seq:
            keys.append((line, (l_ext, seq)))
        ticker.tick()
        if not c.ok or batch.errors:
            continue
        assert loan
        out.append({"loan_id": loan[0], "seq": seq, "due_date": due, "principal_due": principal,
                    "interest_due": interest, "fee_due": fee})
    first_seen(batch, keys, column="seq", what="this (loan_id, seq)")
    taken = _existing_seqs(batch, {loans[k[0]][0] for _, k in keys if k[0] in loans})
    for line, (l_ext, seq) in keys:
        if l_ext in loans and (loans[l_ext][0], seq) in taken:
            batch.bad(line, "seq", f"loan {l_ext!r} already has an installment {seq}")
    return out


def prepare_payments(batch: Batch, rows: list[Row], ticker: Ticker) -> list[dict[str, Any]]:
    """Validate payment rows: loan known, paid on or after disbursement and not in the future."""
    loans = existing_loans(batch, (vals.get("loan_id", "").strip() for _, vals in rows))
    out: list[dict[str, Any]] = []
    past_date = partial(v.iso_date, not_after=batch.today)
    positive = partial(v.amount, positive=True)
    for line, values in rows:
        c = Cells(batch, line, values)
        l_ext = c.get("loan_id", v.ext_id)
        paid_on = c.get("paid_on", past_date)
        amount = c.get("amount", positive)
        loan = loans.get(l_ext) if l_ext else None
        if l_ext and loan is None:
            c.fail("loan_id", _missing_loan(l_ext))
        if loan and paid_on and paid_on < loan[1]:
            c.fail("paid_on", f"paid before the loan was disbursed ({loan[1].isoformat()})")
        ticker.tick()
        if not c.ok or batch.errors:
            continue
        assert loan
        out.append({"loan_id": loan[0], "paid_on": paid_on, "amount": amount, "ext_ref": None,
                    "created_at": batch.now})
    return out
