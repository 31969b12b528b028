"""The data files of an evidence bundle: one JSON list per table, personal data masked.

A bundle goes to regulators, courts and the borrower's counsel; it needs the facts, not the full
name or number. Names and phone numbers are decrypted only to be masked, and a free-text message
that quotes a known name or number gets the masked form in its place.
"""

from __future__ import annotations

from typing import Any

from collectguard.adapters.crypto import PiiCipher, mask_name, mask_phone
from collectguard.adapters.db.models import Borrower, Contact
from collectguard.services.audit_borrower import BorrowerFile


def _plain(cipher: PiiCipher, blob: bytes | None) -> str:
    if not blob:
        return ""
    try:
        return cipher.decrypt(blob)
    except ValueError:  # an erased or foreign-key field: show nothing rather than fail the export
        return ""


class Masker:
    """Masks the borrower's and the contacts' names and numbers wherever they appear."""

    def __init__(self, f: BorrowerFile, cipher: PiiCipher) -> None:
        self.cipher = cipher
        pairs: dict[str, str] = {}
        rows: list[Borrower | Contact] = [f.borrower, *f.contacts]
        for row in rows:
            name, phone = _plain(cipher, row.name_enc), _plain(cipher, row.phone_enc)
            if len(name) >= 2:
                pairs[name] = mask_name(name)
            if phone:
                pairs[phone] = mask_phone(phone)
                digits = "".join(ch for ch in phone if ch.isdigit())
                if len(digits) >= 7:
                    pairs[digits] = mask_phone(phone)
                    if digits.startswith("86"):
                        pairs[digits[2:]] = mask_phone(phone)
        # Longest first, so "+8613800001234" is masked before its tail "13800001234" is.
        self._pairs = sorted(pairs.items(), key=lambda kv: -len(kv[0]))

    def text(self, s: str | None) -> str | None:
        """``s`` with every known name and number masked."""
        if not s:
            return s
        for plain, masked in self._pairs:
            s = s.replace(plain, masked)
        return s

    def name(self, blob: bytes | None) -> str:
        """An encrypted name, decrypted and masked (张**)."""
        return mask_name(_plain(self.cipher, blob))

    def phone(self, blob: bytes | None) -> str:
        """An encrypted phone number, decrypted and masked (138****1234)."""
        return mask_phone(_plain(self.cipher, blob))


def bundle_data(f: BorrowerFile, cipher: PiiCipher) -> dict[str, Any]:
    """The bundle's ``data/<name>.json`` contents, keyed by name."""
    m = Masker(f, cipher)
    b = f.borrower
    loan_ext = {ln.id: ln.ext_id for ln in f.loans}
    return {
        "borrower": {
            "ext_id": b.ext_id,
            "name": m.name(b.name_enc),
            "phone": m.phone(b.phone_enc),
            "jurisdiction": b.jurisdiction,
            "timezone": b.timezone,
            "language": b.language,
            "status": b.status,
            "tenant": f.tenant.code,
        },
        "loans": [
            {
                "loan": ln.ext_id,
                "product": ln.product,
                "lender_type": ln.lender_type,
                "principal": ln.principal,
                "currency": ln.currency,
                "annual_rate": ln.annual_rate,
                "apr": ln.apr,
                "disbursed_on": ln.disbursed_on,
                "dpd": ln.dpd,
                "bucket": ln.bucket,
                "outstanding": ln.outstanding,
                "debt_status": ln.debt_status,
                "as_of": ln.as_of,
            }
            for ln in f.loans
        ],
        "cases": [
            {
                "case_id": cs.id,
                "loan": loan_ext.get(cs.loan_id),
                "status": cs.status,
                "bucket": cs.bucket,
                "dpd": cs.dpd,
                "opened_on": cs.opened_on,
                "closed_on": cs.closed_on,
                "close_reason": cs.close_reason,
                "agency_tenant_id": cs.agency_tenant_id,
            }
            for cs in f.cases
        ],
        "contacts": [
            {
                "contact": ct.ext_id,
                "name": m.name(ct.name_enc),
                "phone": m.phone(ct.phone_enc),
                "relation": ct.relation,
                "source": ct.source,
                "designated_by_borrower": ct.designated_by_borrower,
                "no_contact_requested": ct.no_contact_requested,
            }
            for ct in f.contacts
        ],
        "consents": [
            {
                "kind": cn.kind,
                "form": cn.form,
                "clause_version": cn.clause_version,
                "channel": cn.channel,
                "evidence_hash": cn.evidence_hash,
                "given_at": cn.given_at,
                "withdrawn_at": cn.withdrawn_at,
            }
            for cn in f.consents
        ],
        "contact_attempts": [
            {
                "attempt_id": a.id,
                "case_id": a.case_id,
                "loan": loan_ext.get(a.loan_id),
                "channel": a.channel,
                "recipient_role": a.recipient_role,
                "contact_id": a.contact_id,
                "actor": a.actor,
                "collector_kind": a.collector_kind,
                "planned_at": a.planned_at,
                "message": m.text(a.message),
                "outcome": a.outcome,
                "outcome_at": a.outcome_at,
                "decision_id": a.decision_id,
            }
            for a in f.attempts
        ],
        "decisions": [
            {
                "decision_id": d.id,
                "created_at": d.created_at,
                "verdict": d.verdict,
                "pack": d.pack,
                "pack_version": d.pack_version,
                "rules": d.rules.split(),
                "violations": _violations(d.result),
                "message": m.text(_message(d.event)),
            }
            for d in f.decisions
        ],
        "outcomes": [
            {
                "ptp_id": p.id,
                "case_id": p.case_id,
                "promised_on": p.promised_on,
                "due_date": p.due_date,
                "amount": p.amount,
                "status": p.status,
                "settled_on": p.settled_on,
            }
            for p in f.ptps
        ]
        + [
            {"payment_plan_id": p.id, "case_id": p.case_id, "status": p.status, "schedule": p.schedule} for p in f.plans
        ],
        "complaints": [
            {
                "complaint_id": cp.id,
                "case_id": cp.case_id,
                "channel": cp.channel,
                "category": cp.category,
                "text": m.text(cp.text),
                "status": cp.status,
                "created_at": cp.created_at,
                "resolved_at": cp.resolved_at,
            }
            for cp in f.complaints
        ],
        "rights_requests": [
            {
                "request_id": r.id,
                "kind": r.kind,
                "status": r.status,
                "created_at": r.created_at,
                "handled_at": r.handled_at,
            }
            for r in f.rights
        ],
    }


def _violations(result: Any) -> list[dict[str, Any]]:
    if not isinstance(result, dict):
        return []
    return [
        {k: v.get(k) for k in ("rule", "citations", "message_zh", "message_en")}
        for v in result.get("violations") or []
        if isinstance(v, dict)
    ]


def _message(event: Any) -> str | None:
    msg = event.get("message") if isinstance(event, dict) else None
    return msg if isinstance(msg, str) else None
