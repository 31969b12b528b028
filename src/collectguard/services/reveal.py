"""Phone numbers on the workbench: revealing a masked number (with a reason), and the numbers a
borrower designates — the only source of new numbers collectguard accepts after the loan is made.

**Reveal** (``reveal_phone``): the workbench shows 138****1234; the clear number is given only to a
caller holding ``pii.read`` who sees the borrower or contact (collectors and agencies never see
contact-list entries) and who states why (at least ``REASON_MIN`` characters). The reason goes
into the PII-read audit record written in the same transaction, so "who looked at whose number,
when and why" is always answerable.

**Data sources** (``contact_add_as``): a borrower updates their own emergency contacts in the portal,
or staff type in what the borrower told them; either way the contact is tagged
``borrower_designated``. Numbers from anywhere else are refused with the law that forbids them
(``SOURCE_REFUSALS``): bought from data brokers or "lost-contact repair" (失联修复) services,
operator call records, or a scraped contact list (通讯录). The CSV importer refuses ``purchased``
and unconsented ``contact_list`` rows; ``import_contact_source`` is its column validator that also
refuses the broker sources with their citations.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select

from collectguard.adapters.crypto import mask_phone
from collectguard.adapters.db.models import Borrower, Contact
from collectguard.bootstrap import Container
from collectguard.domain import validation as v
from collectguard.errors import BadInput, Conflict, Forbidden
from collectguard.services.audit import audit_append
from collectguard.services.authz import Principal, ensure_visible, require

__all__ = ["ACCEPTED_SOURCE", "BROKER_SOURCES", "DESIGNATED_RELATIONS", "REASON_MIN", "SOURCE_REFUSALS",
           "contact_add_as", "contact_source_refusal", "import_contact_source", "reveal_phone"]

REASON_MIN, REASON_MAX = 4, 500
ACCEPTED_SOURCE = "borrower_designated"
# Relations a borrower may designate: a guarantor is a party to a contract, not a designation, and
# a contact-list entry is by definition not designated.
DESIGNATED_RELATIONS = tuple(r for r in v.CONTACT_RELATIONS if r not in ("guarantor", "contact_list_entry"))
_BROKER = ("CN:PIPL:10", "CN:PIPL:23", "CN:CL:253-1", "CN:GBT45251")
SOURCE_REFUSALS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "purchased": ("从数据商购买的号码一律不予接收：非法买卖、提供个人信息。",
                  "numbers bought from data brokers are never accepted: illegal trade in personal information",
                  _BROKER),
    "data_broker": ("通过第三方数据（失联修复）获得的号码不予接收：非法获取、提供个人信息。",
                    "numbers found through third-party data ('lost-contact repair', 失联修复) are refused: "
                    "personal information illegally obtained and provided", _BROKER),
    "repair_service": ("失联修复服务提供的号码不予接收：非法获取、提供个人信息。",
                       "numbers from 'lost-contact repair' (失联修复) services are refused: personal information "
                       "illegally obtained and provided", _BROKER),
    "operator_call_log": ("运营商通话记录中的号码不予接收：通话记录属于通信内容与行踪相关信息，不得非法获取。",
                          "numbers taken from operator call records are refused: call records may not be obtained "
                          "without a lawful basis", _BROKER),
    "contact_list": ("抓取通讯录获得的号码不是借款人指定的联系人，不予接收（不属于必要个人信息，违反最小必要原则）。",
                     "numbers scraped from the contact list are not designated by the borrower and are refused "
                     "(not necessary personal information; minimum-necessary principle)",
                     ("CN:PIPL:6", "CN:PIPL:13", "CN:NECPI2021", "CN:GBT45251")),
    "public_record": ("此处只接收借款人本人指定的联系人。", "only contacts the borrower designated are accepted here",
                      ("CN:PIPL:13",)),
}
# Sources no import or form ever accepts, whatever consent is on record.
BROKER_SOURCES = ("purchased", "data_broker", "repair_service", "operator_call_log")
# services.authz "contact.write": workers, compliance and the borrower; agencies are refused below.
PERM_CONTACT_ADD = "contact.write"


def contact_source_refusal(source: str) -> dict[str, Any] | None:
    """Why a number from ``source`` is refused (``{message_zh, message_en, citations}``), or None
    for the accepted source. An unknown source is refused too."""
    if source == ACCEPTED_SOURCE:
        return None
    zh, en, cites = SOURCE_REFUSALS.get(source, ("未知的号码来源。", f"unknown source {source!r}", ()))
    return {"message_zh": zh, "message_en": en, "citations": list(cites)}


def import_contact_source(value: str) -> str:
    """The CSV importer's validator of ``source``: a known source, or ``InvalidValue`` — with the
    citations for the broker sources (``services/import_people.py``: ``sources = import_contact_source``)."""
    v_ = value.strip().lower()
    if v_ in BROKER_SOURCES:
        _zh, en, cites = SOURCE_REFUSALS[v_]
        raise v.InvalidValue(f"{en} ({', '.join(cites)})")
    return v.choice(value, allowed=v.CONTACT_SOURCES)


def reveal_phone(c: Container, *, principal: Principal, borrower_id: int | None = None, contact_id: int | None = None,
                 reason: str) -> str:
    """The clear phone number of a borrower or contact the caller sees; the reason is audited with the read."""
    require(principal, "pii.read")
    why = (reason or "").strip()
    if not REASON_MIN <= len(why) <= REASON_MAX:
        raise BadInput(f"say why you need the number ({REASON_MIN}–{REASON_MAX} characters)", field="reason")
    if (borrower_id is None) == (contact_id is None):
        raise BadInput("give exactly one of borrower_id and contact_id", field="borrower_id")
    now = c.clock()
    with c.uow() as s:
        if contact_id is not None:
            contact = ensure_visible(s.get(Contact, contact_id), principal, session=s)
            owner, blob = contact.borrower_id, contact.phone_enc
        else:
            borrower = ensure_visible(s.get(Borrower, borrower_id), principal, session=s)
            owner, blob = borrower.id, borrower.phone_enc
        try:
            phone = c.cipher.decrypt(blob)
        except ValueError:  # anonymised by retention, or under a retired key: nothing to reveal
            raise Conflict("this number is no longer on record") from None
        audit_append(s, tenant_id=principal.tenant_id, actor=principal.actor, action="pii.read",
                     subject=f"borrower:{owner}", now=now, shard_key=str(owner),
                     payload={"borrower_id": owner, "contact_id": contact_id, "field": "phone", "reason": why,
                              "role": principal.role})
    return phone


def contact_add_as(c: Container, *, principal: Principal, borrower_id: int, name: str, phone: str, relation: str,
                   source: str = ACCEPTED_SOURCE) -> dict[str, Any]:
    """Add a contact the borrower designated (the borrower in the portal, or staff for them); any
    other source is refused with its citations. Returns the contact, number masked."""
    require(principal, PERM_CONTACT_ADD)
    if principal.agency_tenant_id is not None:  # an entrusted processor collects no new data (PIPL 21)
        raise Forbidden("an agency may not add contacts")
    refusal = contact_source_refusal(source)
    if refusal is not None:
        raise BadInput(f"{refusal['message_en']} ({', '.join(refusal['citations'])})", field="source",
                       detail={"refusal": refusal})
    if relation not in DESIGNATED_RELATIONS:
        raise BadInput(f"expected one of {', '.join(DESIGNATED_RELATIONS)}", field="relation")
    now = c.clock()
    with c.uow() as s:
        b = ensure_visible(s.get(Borrower, borrower_id), principal, session=s)
        try:
            clean_name = v.required_text(name, max_len=100)
            e164 = v.phone_e164(phone, jurisdiction=b.jurisdiction)
        except v.InvalidValue as exc:
            raise BadInput(exc.reason, field="name" if not name.strip() else "phone") from None
        key = c.cipher.lookup_hash(e164)
        if key == b.phone_hmac or s.scalar(select(Contact.id).where(Contact.borrower_id == b.id,
                                                                    Contact.phone_hmac == key)):
            raise Conflict("this number is already on record for the borrower")
        row = Contact(tenant_id=b.tenant_id, borrower_id=b.id, ext_id=f"d-{secrets.token_hex(10)}",
                      name_enc=c.cipher.encrypt(clean_name), phone_enc=c.cipher.encrypt(e164), phone_hmac=key,
                      relation=relation, source=ACCEPTED_SOURCE, designated_by_borrower=True, created_at=now)
        s.add(row)
        s.flush()
        audit_append(s, tenant_id=b.tenant_id, actor=principal.actor, action="contact.add", subject=f"borrower:{b.id}",
                     now=now, shard_key=str(b.id),
                     payload={"borrower_id": b.id, "contact_id": row.id, "relation": relation,
                              "source": ACCEPTED_SOURCE, "by": "borrower" if principal.role == "borrower" else "staff"})
        return {"id": row.id, "borrower_id": b.id, "relation": relation, "source": row.source,
                "phone": mask_phone(e164)}
