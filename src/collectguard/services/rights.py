"""Data-subject rights: access and copy (PIPL 45, GDPR 15), deletion (PIPL 47, GDPR 17).

Deletion removes what is not needed and refuses, with the reason and the citation, what is:
data needed for an open claim (GDPR 17(3)(e): establishing, exercising or defending legal
claims) and collection records still inside their legal retention period. Contact-list data is
never needed (it is not a lawful collection source) and always goes. Every request is stored in
``rights_request`` and audited; the access copy is a PII read and so audited too.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from collectguard.adapters.db.models import RightsRequest
from collectguard.services.audit import audit_append
from collectguard.services.audit_borrower import BorrowerFile, borrower_audit_records, borrower_file
from collectguard.services.audit_proof import hash_time
from collectguard.services.retention import borrower_anonymise, contacts_erase, retention_candidates

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from collectguard.adapters.crypto import PiiCipher
    from collectguard.bootstrap import Container

_CLAIM_CITATIONS = {
    "EU": ["EU:GDPR:17(3)(e)"],
    "CN": ["CN:PIPL:13", "CN:PIPL:47"],
    "US": ["US:REGF:1006.100(a)"],
}


def _plain(cipher: PiiCipher, blob: bytes | None) -> str | None:
    if blob is None:
        return None
    try:
        return cipher.decrypt(blob)
    except ValueError:
        return None


def _rows(rows: list[Any], skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return [{k: getattr(r, k) for k in r.__table__.columns.keys() if k not in skip} for r in rows]


def _copy(f: BorrowerFile, cipher: PiiCipher, session: Session) -> dict[str, Any]:
    b = f.borrower
    secret = ("name_enc", "phone_enc", "id_number_enc", "phone_hmac", "id_number_hmac")
    data = {
        "borrower": {
            **_rows([b], secret)[0],
            "name": _plain(cipher, b.name_enc),
            "phone": _plain(cipher, b.phone_enc),
            "id_number": _plain(cipher, b.id_number_enc),
        },
        "contacts": [
            {**row, "name": _plain(cipher, ct.name_enc), "phone": _plain(cipher, ct.phone_enc)}
            for ct, row in zip(f.contacts, _rows(f.contacts, secret), strict=True)
        ],
        "loans": _rows(f.loans),
        "cases": _rows(f.cases),
        "consents": _rows(f.consents),
        "contact_attempts": _rows(f.attempts, ("recipient_key",)),
        "decisions": _rows(f.decisions),
        "complaints": _rows(f.complaints),
        "promises_to_pay": _rows(f.ptps),
        "payment_plans": _rows(f.plans),
        "rights_requests": _rows(f.rights),
        "audit_records": [
            {
                "chain": r.chain,
                "seq": r.seq,
                "time": hash_time(r.time),
                "actor": r.actor,
                "action": r.action,
                "subject": r.subject,
                "payload": json.loads(r.payload),
            }
            for r in borrower_audit_records(session, f)
        ],
    }
    return dict(json.loads(json.dumps(data, ensure_ascii=False, default=str)))


def rights_request_access(
    c: Container, *, borrower_id: int, now: dt.datetime, actor: str = "borrower"
) -> dict[str, Any]:
    """A JSON copy of everything held about the borrower, decrypted, for the borrower themselves."""
    with c.uow() as s:
        f = borrower_file(s, borrower_id)
        req = RightsRequest(
            tenant_id=f.tenant.id,
            borrower_id=borrower_id,
            kind="access",
            status="done",
            detail={"basis": ["CN:PIPL:45", "EU:GDPR:15"]},
            created_at=now,
            handled_at=now,
        )
        s.add(req)
        s.flush()
        audit_append(
            s,
            tenant_id=f.tenant.id,
            actor=actor,
            action="rights.access",
            subject=f"rights_request:{req.id}",
            payload={"borrower_id": borrower_id, "request_id": req.id},
            now=now,
        )
        copy = _copy(f, c.cipher, s)
    return {"request_id": req.id, "generated_at": now.isoformat(), "data": copy}


def _claim_open(f: BorrowerFile) -> bool:
    if any(cs.status == "open" for cs in f.cases):
        return True
    return any((ln.outstanding is None and ln.bucket != "closed") or (ln.outstanding or 0) > 0 for ln in f.loans)


def rights_request_delete(
    c: Container, *, borrower_id: int, now: dt.datetime, actor: str = "borrower", as_of: dt.date | None = None
) -> dict[str, Any]:
    """Delete what is not needed; refuse, with reasons and citations, what is (open claim, retention)."""
    as_of = as_of or now.date()
    with c.uow() as s:
        f = borrower_file(s, borrower_id)
        jur = f.borrower.jurisdiction
        deleted: dict[str, int] = {}
        kept: list[dict[str, Any]] = []
        listed = [ct for ct in f.contacts if ct.source == "contact_list"]
        deleted["contact_list_entries"] = contacts_erase(s, c.cipher, listed)
        withdrawn = [cn for cn in f.consents if cn.kind == "contact_list" and cn.withdrawn_at is None]
        for cn in withdrawn:
            cn.withdrawn_at = now
        deleted["contact_list_consents_withdrawn"] = len(withdrawn)
        state = retention_candidates(s, as_of=as_of, borrower_id=borrower_id)[0]
        if _claim_open(f):
            kept.append(
                {
                    "data": ["identity", "loans", "cases", "collection_records", "designated_contacts"],
                    "reason": "legal_claim",
                    "reason_zh": "债务尚未清偿，处理上述信息是确立、行使或抗辩法律请求所必需",
                    "reason_en": "the debt is outstanding: this data is needed to establish, exercise "
                    "or defend the legal claim",
                    "citations": _CLAIM_CITATIONS.get(jur, ["EU:GDPR:17(3)(e)"]),
                }
            )
        elif state["expired"]:
            deleted.update(borrower_anonymise(s, c.cipher, borrower_id))
        else:
            others = [ct for ct in f.contacts if ct.source != "contact_list"]
            deleted["contacts"] = contacts_erase(s, c.cipher, others)
            kept.append(
                {
                    "data": ["identity", "loans", "cases", "collection_records"],
                    "reason": "retention",
                    "until": state["expires_on"],
                    "reason_zh": f"法定保存期内的催收记录，保存至 {state['expires_on']} 后删除",
                    "reason_en": f"collection records under a legal retention period, erased after "
                    f"{state['expires_on']}",
                    "citations": state["citations"],
                }
            )
        status = "partial" if kept and any(deleted.values()) else "refused" if kept else "done"
        result = {"status": status, "deleted": deleted, "kept": kept}
        req = RightsRequest(
            tenant_id=f.tenant.id,
            borrower_id=borrower_id,
            kind="deletion",
            status=status,
            detail=result,
            created_at=now,
            handled_at=now,
        )
        s.add(req)
        s.flush()
        audit_append(
            s,
            tenant_id=f.tenant.id,
            actor=actor,
            action="rights.delete",
            subject=f"rights_request:{req.id}",
            payload={
                "borrower_id": borrower_id,
                "request_id": req.id,
                "status": status,
                "deleted": deleted,
                "kept": [k["reason"] for k in kept],
            },
            now=now,
        )
    return {"request_id": req.id, **result}
