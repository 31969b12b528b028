"""The consent ledger (PIPL 14, 15, 16, 23, 29, 47): give, withdraw, list — history kept, never overwritten.

A consent is one row: kind, form (``separate`` or ``bundled``), channel, time and evidence. Only
hashes are kept as evidence: the SHA-256 of the clause text shown (from the versioned ``clause``
table), the page version, and the SHA-256 of the device fingerprint; ``evidence_hash`` is the
SHA-256 of all of them in canonical JSON, so the proof cannot be edited later without notice.

Withdrawal sets ``withdrawn_at`` on the row and nothing else; giving the same kind again is a new
row. Withdrawing ``contact_list`` crypto-shreds the borrower's stored contact-list contacts
(PIPL 47: delete when consent is withdrawn) in the same transaction, audited with the count only.
Give and withdraw take the borrower lock (``facts.borrower_lock``), so a withdrawal is ordered
against contact attempts and takes effect on the very next guard decision.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from collectguard.adapters.crypto import PiiCipher
from collectguard.adapters.db.models import Borrower, Consent, Contact, Tenant
from collectguard.bootstrap import Container
from collectguard.domain.event import ConsentFacts
from collectguard.domain.validation import CONSENT_FORMS, CONSENT_KINDS
from collectguard.errors import BadInput, Conflict, NotFound
from collectguard.services.audit import audit_append, canonical_json
from collectguard.services.authz import Principal, ensure_visible, require
from collectguard.services.clauses import clause_get
from collectguard.services.facts import borrower_lock
from collectguard.services.retention import contacts_erase

__all__ = [
    "CHANNELS",
    "borrower_by_ext",
    "consent_give",
    "consent_give_as",
    "consent_view",
    "consent_withdraw",
    "consent_withdraw_as",
    "consent_withdraw_kind",
    "consents_list_as",
    "consents_of",
]

CHANNELS = ("app", "web", "paper", "phone", "import")


def _iso(t: dt.datetime | None) -> str | None:
    # SQLite hands back naive datetimes; everything is stored in UTC.
    return None if t is None else (t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t).isoformat()


def _sha(prefix: str, value: str) -> str:
    return hashlib.sha256(f"{prefix}:{value}".encode()).hexdigest()


def consents_of(s: Session, *, borrower_id: int) -> list[Consent]:
    """Every consent row of a borrower, given and withdrawn, oldest first."""
    return list(
        s.scalars(
            select(Consent).where(Consent.borrower_id == borrower_id).order_by(Consent.given_at, Consent.id)
        )
    )


def consent_view(row: Consent) -> dict[str, Any]:
    """A consent as JSON: what was agreed, how, and the evidence hashes (never raw evidence)."""
    detail = row.detail or {}
    return {
        "id": row.id,
        "borrower_id": row.borrower_id,
        "kind": row.kind,
        "form": row.form,
        "channel": row.channel,
        "clause_version": row.clause_version,
        "evidence_hash": row.evidence_hash,
        "evidence": detail.get("evidence"),
        "hours": detail.get("hours"),
        "given_at": _iso(row.given_at),
        "active": row.withdrawn_at is None,
        "withdrawn_at": _iso(row.withdrawn_at),
    }


def consent_give(
    s: Session,
    *,
    borrower: Borrower,
    kind: str,
    form: str,
    channel: str,
    actor: str,
    now: dt.datetime,
    clause_code: str | None = None,
    clause_version: str | None = None,
    page_version: str | None = None,
    device_fingerprint: str | None = None,
    hours: str | None = None,
) -> Consent:
    """Record a consent given now; ``Conflict`` if the same kind is already in force (withdraw first)."""
    if kind not in CONSENT_KINDS:
        raise BadInput(f"unknown kind {kind!r}; expected one of {', '.join(CONSENT_KINDS)}", field="kind")
    if form not in CONSENT_FORMS:
        raise BadInput(f"form must be one of {', '.join(CONSENT_FORMS)}", field="form")
    if channel not in CHANNELS:
        raise BadInput(f"channel must be one of {', '.join(CHANNELS)}", field="channel")
    if (kind == "agreed_hours") != (hours is not None):
        raise BadInput('"hours" is required for agreed_hours and only for it', field="hours")
    if hours is not None:
        try:
            ConsentFacts(agreed_hours=hours)  # the guard's own check of "HH:MM-HH:MM"
        except ValidationError as exc:
            raise BadInput(str(exc.errors()[0]["msg"]).removeprefix("Value error, "), field="hours") from None
    borrower_lock(s, borrower.id)
    if any(r.kind == kind and r.withdrawn_at is None for r in consents_of(s, borrower_id=borrower.id)):
        raise Conflict(f"a {kind} consent is already in force; withdraw it before giving a new one")
    evidence: dict[str, Any] = {"kind": kind, "form": form, "channel": channel, "given_at": now.isoformat()}
    if clause_code is not None:
        clause = clause_get(s, tenant_id=borrower.tenant_id, code=clause_code, version=clause_version)
        evidence.update(clause_code=clause.code, clause_version=clause.version, clause_sha256=clause.sha256)
        clause_version = clause.version
    if page_version:
        evidence["page_version"] = page_version[:64]
    if device_fingerprint:
        evidence["device_sha256"] = _sha("device", device_fingerprint)
    detail: dict[str, Any] = {"evidence": evidence}
    if hours is not None:
        detail["hours"] = hours
    row = Consent(
        tenant_id=borrower.tenant_id,
        borrower_id=borrower.id,
        kind=kind,
        form=form,
        clause_version=(clause_version or "")[:32],
        channel=channel,
        evidence_hash=hashlib.sha256(canonical_json(evidence).encode()).hexdigest(),
        detail=detail,
        given_at=now.astimezone(dt.UTC),
    )
    s.add(row)
    s.flush()
    audit_append(
        s,
        tenant_id=borrower.tenant_id,
        actor=actor,
        action="consent.give",
        subject=f"consent:{row.id}",
        payload={
            "borrower_id": borrower.id,
            "consent_id": row.id,
            "kind": kind,
            "form": form,
            "evidence_hash": row.evidence_hash,
        },
        now=now,
    )
    return row


def consent_withdraw(
    s: Session, *, cipher: PiiCipher, consent: Consent, actor: str, now: dt.datetime
) -> dict[str, Any]:
    """Withdraw one consent (sets ``withdrawn_at``); ``Conflict`` if it was already withdrawn."""
    borrower_lock(s, consent.borrower_id)
    if consent.withdrawn_at is not None:
        raise Conflict("this consent was already withdrawn")
    return _withdraw(s, cipher, [consent], actor=actor, now=now)


def consent_withdraw_kind(
    s: Session, *, cipher: PiiCipher, borrower_id: int, kind: str, actor: str, now: dt.datetime
) -> dict[str, Any]:
    """Withdraw every consent of ``kind`` in force for a borrower; ``Conflict`` when there is none."""
    if kind not in CONSENT_KINDS:
        raise BadInput(f"unknown kind {kind!r}; expected one of {', '.join(CONSENT_KINDS)}", field="kind")
    borrower_lock(s, borrower_id)
    rows = [r for r in consents_of(s, borrower_id=borrower_id) if r.kind == kind and r.withdrawn_at is None]
    if not rows:
        raise Conflict(f"no {kind} consent is in force for this borrower")
    return _withdraw(s, cipher, rows, actor=actor, now=now)


def _withdraw(
    s: Session, cipher: PiiCipher, rows: list[Consent], *, actor: str, now: dt.datetime
) -> dict[str, Any]:
    borrower_id, tenant_id = rows[0].borrower_id, rows[0].tenant_id
    for r in rows:
        r.withdrawn_at = now.astimezone(dt.UTC)
    erased = 0
    if any(r.kind == "contact_list" for r in rows):
        listed = list(
            s.scalars(
                select(Contact).where(Contact.borrower_id == borrower_id, Contact.source == "contact_list")
            )
        )
        erased = contacts_erase(s, cipher, listed)
    s.flush()
    ids = [r.id for r in rows]
    audit_append(
        s,
        tenant_id=tenant_id,
        actor=actor,
        action="consent.withdraw",
        subject=f"borrower:{borrower_id}",
        payload={
            "borrower_id": borrower_id,
            "consent_ids": ids,
            "kinds": sorted({r.kind for r in rows}),
            "contact_list_contacts_erased": erased,
        },
        now=now,
    )
    return {
        "borrower_id": borrower_id,
        "withdrawn": ids,
        "kinds": sorted({r.kind for r in rows}),
        "contacts_erased": erased,
        "withdrawn_at": now.isoformat(),
    }


# ---- entry points for the edges (each one unit of work) -------------------------------------------


def _borrower(s: Session, p: Principal, borrower_id: int) -> Borrower:
    return ensure_visible(s.get(Borrower, borrower_id), p, session=s)


def consent_give_as(c: Container, *, principal: Principal, borrower_id: int, **fields: Any) -> dict[str, Any]:
    """API: the borrower (or a compliance officer) gives a consent; ``fields`` as ``consent_give``."""
    require(principal, "consent.write")
    with c.uow() as s:
        row = consent_give(
            s, borrower=_borrower(s, principal, borrower_id), actor=principal.actor, now=c.clock(), **fields
        )
        return consent_view(row)


def consent_withdraw_as(c: Container, *, principal: Principal, consent_id: int) -> dict[str, Any]:
    """API: withdraw one consent by id (404 unless the caller may see it)."""
    require(principal, "consent.write")
    with c.uow() as s:
        row = ensure_visible(s.get(Consent, consent_id), principal, session=s)
        return consent_withdraw(s, cipher=c.cipher, consent=row, actor=principal.actor, now=c.clock())


def consents_list_as(c: Container, *, principal: Principal, borrower_id: int) -> list[dict[str, Any]]:
    """API: a borrower's consent history."""
    require(principal, "consent.read")
    with c.uow(write=False) as s:
        return [consent_view(r) for r in consents_of(s, borrower_id=_borrower(s, principal, borrower_id).id)]


def borrower_by_ext(s: Session, *, tenant_code: str, ext_id: str) -> Borrower:
    """CLI: a borrower by tenant code and external id."""
    b = s.scalar(
        select(Borrower)
        .join(Tenant, Tenant.id == Borrower.tenant_id)
        .where(Tenant.code == tenant_code, Borrower.ext_id == ext_id)
    )
    if b is None:
        raise NotFound(f"no borrower {ext_id!r} in tenant {tenant_code!r}", detail={"field": "borrower"})
    return b
