"""Tables of contact attempts' stored facts (migration 0004).

- ``borrower_flag``: facts about the borrower that the guard reads from the store and that have no
  column of their own: a request to stop contacting them (US: a cease request, 15 USC 1692c(c);
  CN/EU: recorded, the pack decides), representation by an attorney, an employer who prohibits
  calls at work. A flag is cleared by setting ``cleared_at``; rows are never overwritten, so the
  history of who asked what and when stays evidence.
- ``attempt_meta``: what ``contact_attempt`` (0001) does not carry: the purpose of the contact
  (``validation_notice`` answers "was the US validation notice sent?") and the agency that acted,
  so that the lender sees which agency contacted its borrower.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from collectguard.adapters.db.models import ID, Base

BORROWER_FLAG_KINDS = ("no_contact_request", "represented_by_attorney", "employer_prohibits")


class BorrowerFlag(Base):
    __tablename__ = "borrower_flag"
    __table_args__ = (Index("ix_borrower_flag_borrower_kind", "borrower_id", "kind"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id"))
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrower.id"))
    kind: Mapped[str] = mapped_column(String(32))  # one of BORROWER_FLAG_KINDS
    source: Mapped[str] = mapped_column(String(64), default="")  # e.g. "contact_attempt:12"
    set_by: Mapped[str] = mapped_column(String(120), default="")
    set_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    cleared_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AttemptMeta(Base):
    __tablename__ = "attempt_meta"
    attempt_id: Mapped[int] = mapped_column(
        ForeignKey("contact_attempt.id", ondelete="CASCADE"), primary_key=True
    )
    purpose: Mapped[str] = mapped_column(String(32))
    agency_tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenant.id"), nullable=True)
