"""The borrower portal's contact history: every contact made or planned about the borrower, with the
guard's decision (``services.portal`` has the rest of the portal's read models).

Built from the stored decisions (each guard check of a planned contact, allowed or denied) and the
contact attempts (the contacts made), newest first. Who acted comes from the audit record of the
decision or attempt: a borrower sees the collector's display name or staff number and the agency's
name, never a username; numbers are masked.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from collectguard.adapters.crypto import mask_name, mask_phone
from collectguard.adapters.db.models import ApiToken, AuditRecord, Contact, ContactAttempt, Decision, Tenant, User
from collectguard.bootstrap import Container
from collectguard.services.assess import finding_articles, label
from collectguard.services.authz import Principal, require, scope_tenant
from collectguard.services.portal import borrower_me, plain, utc

__all__ = ["HISTORY_MAX", "portal_contacts"]

HISTORY_MAX = 200
_NOBODY: dict[str, Any] = {"kind": "api", "name": None, "staff_no": None, "agency": None}


def _who(s: Session, actors: set[str]) -> dict[str, dict[str, Any]]:
    """``user:<id>`` / ``token:<id>`` -> who that is, as a borrower may see it: the collector's display
    name or staff number, and the agency's name when the collector works for one (never a username)."""
    ids: dict[str, int] = {}
    for a in actors:
        kind, _, raw = a.partition(":")
        if raw.isdigit() and kind == "user":
            ids[a] = int(raw)
        elif raw.isdigit() and kind == "token":
            user_id = s.scalar(select(ApiToken.user_id).where(ApiToken.id == int(raw)))
            if user_id is not None:
                ids[a] = int(user_id)
    rows = {u.id: (u, t) for u, t in s.execute(select(User, Tenant).join(Tenant, Tenant.id == User.tenant_id)
                                                .where(User.id.in_(set(ids.values()))))} if ids else {}
    out: dict[str, dict[str, Any]] = {}
    for a in actors:
        found = rows.get(ids.get(a, -1))
        if found is None:
            out[a] = {**_NOBODY, "kind": "system" if a.startswith("system") else "api"}
            continue
        u, t = found
        out[a] = {"kind": "agency" if t.kind == "agency" else "lender", "name": u.display_name or None,
                  "staff_no": u.id, "agency": t.name if t.kind == "agency" else None}
    return out


def _recipient(ev: dict[str, Any], attempt: ContactAttempt | None, contacts: dict[int, Contact],
               c: Container, me: dict[str, Any], lang: str) -> dict[str, Any]:
    role = str((ev.get("recipient") or {}).get("role") or (attempt.recipient_role if attempt else "borrower"))
    contact = contacts.get(attempt.contact_id) if attempt is not None and attempt.contact_id else None
    number: str | None = None
    name: str | None = None
    if contact is not None:
        number = mask_phone(plain(c.cipher, contact.phone_enc))
        name = mask_name(plain(c.cipher, contact.name_enc))
    elif role == "borrower":
        number = me["phone"]
    return {"role": role, "label": label(role, lang), "name": name, "number": number}


def portal_contacts(c: Container, *, principal: Principal, lang: str = "zh-CN") -> dict[str, Any]:
    """Every contact made or planned about the borrower (newest first, up to ``HISTORY_MAX``): when,
    how, to whom (numbers masked), by whom, what the guard decided, why, and with what legal basis."""
    require(principal, "contact.read")
    short = "zh" if lang.startswith("zh") else "en"
    with c.uow(write=False) as s:
        me = borrower_me(s, c, principal)
        decisions = list(s.scalars(scope_tenant(select(Decision), Decision, principal)
                                   .order_by(Decision.id.desc()).limit(HISTORY_MAX)))
        attempts = list(s.scalars(scope_tenant(select(ContactAttempt), ContactAttempt, principal)
                                  .order_by(ContactAttempt.planned_at.desc()).limit(HISTORY_MAX)))
        contacts = {ct.id: ct for ct in s.scalars(scope_tenant(select(Contact), Contact, principal))}
        subjects = [f"decision:{d.id}" for d in decisions] + [f"contact_attempt:{a.id}" for a in attempts]
        actor_of: dict[str, str] = {}
        for subject, actor in s.execute(select(AuditRecord.subject, AuditRecord.actor)
                                        .where(AuditRecord.subject.in_(subjects))
                                        .order_by(AuditRecord.id)) if subjects else ():
            actor_of.setdefault(subject, actor)
        for att in attempts:
            if att.actor:
                actor_of.setdefault(f"contact_attempt:{att.id}", att.actor)
        who = _who(s, set(actor_of.values()))
        by_decision = {att.decision_id: att for att in attempts if att.decision_id is not None}
        out: list[dict[str, Any]] = []
        for d in decisions:
            a = by_decision.pop(d.id, None)
            ev: dict[str, Any] = dict(d.event or {})
            result: dict[str, Any] = dict(d.result or {})
            violations = [{**v, "articles": finding_articles(v, short)} for v in result.get("violations") or []]
            actor = actor_of.get(f"decision:{d.id}") or (a.actor if a else "")
            out.append({"at": utc(d.created_at), "local": ev.get("time"), "channel": ev.get("channel"),
                        "purpose": ev.get("purpose", "collect"), "verdict": d.verdict,
                        "kind": "contact" if a is not None else "blocked" if d.verdict == "deny" else "check",
                        "outcome": a.outcome if a else None, "message": ev.get("message"),
                        "recipient": _recipient(ev, a, contacts, c, me, short),
                        "by": who.get(actor, _NOBODY),
                        "violations": violations, "warnings": list(result.get("warnings") or []),
                        "decision_id": d.id})
        for att in by_decision.values():  # attempts whose decision is older than the decisions listed
            out.append({"at": utc(att.planned_at), "local": None, "channel": att.channel, "purpose": None,
                        "verdict": "allow", "kind": "contact", "outcome": att.outcome, "message": att.message,
                        "recipient": _recipient({}, att, contacts, c, me, short),
                        "by": who.get(actor_of.get(f"contact_attempt:{att.id}", ""), _NOBODY),
                        "violations": [], "warnings": [], "decision_id": att.decision_id})
    items = sorted(out, key=lambda h: h["at"], reverse=True)[:HISTORY_MAX]
    return {"me": me, "items": items,
            "counts": {k: sum(1 for h in items if h["kind"] == k) for k in ("contact", "blocked", "check")}}
