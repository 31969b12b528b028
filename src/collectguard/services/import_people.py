"""CSV import of people and permissions: borrowers, their contacts, and their consents (DESIGN §9).

Each ``prepare_*`` validates every row (recording problems on the batch) and returns the rows ready
for a bulk insert, personal data already encrypted. Once a problem is found, encryption is skipped:
the file will be rejected anyway.
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Any

from sqlalchemy import select

from collectguard.adapters.db.models import Borrower, Consent, Contact
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
    first_seen,
)
from collectguard.services.reveal import import_contact_source

DEFAULT_LANGUAGE = {"CN": "zh-CN", "US": "en-US", "EU": "en"}

CONTACT_LIST_REFUSED = (
    "a contact-list number needs the borrower's separate, unwithdrawn contact_list consent on record "
    "(PIPL art. 6 minimum necessary and art. 13 legal basis; GB/T 45251); import that consent first "
    "or leave the row out")
PURCHASED_REFUSED = (
    "numbers bought from data brokers are never accepted (PIPL art. 10 and 23; "
    "Criminal Law art. 253-1 on obtaining citizens' personal information)")


def _missing_borrower(ext: str) -> str:
    return f"no borrower {ext!r} for this tenant (import the borrowers first)"


def prepare_borrowers(batch: Batch, rows: list[Row], ticker: Ticker) -> list[dict[str, Any]]:
    """Validate borrower rows; ids must be new to the tenant and unique in the file."""
    out: list[dict[str, Any]] = []
    keys: list[tuple[int, str]] = []
    # Validators built once, not per row: at 100k rows the small costs add up.
    jurisdiction = partial(v.choice, allowed=v.JURISDICTIONS)
    phones = {j: partial(v.phone_e164, jurisdiction=j) for j in v.JURISDICTIONS}
    cn_id = partial(v.cn_resident_id, today=batch.today)
    for line, values in rows:
        c = Cells(batch, line, values)
        ext = c.get("borrower_id", v.ext_id)
        name = c.get("name", v.required_text)
        jur = c.get("jurisdiction", jurisdiction)
        phone = c.get("phone", phones[jur]) if jur else None
        id_number = c.opt("id_number", cn_id if jur == "CN" else v.other_id_number)
        tz = c.get("timezone", v.timezone_name)
        lang = c.opt("language", v.language_tag, DEFAULT_LANGUAGE.get(jur or "", "en"))
        if ext:
            keys.append((line, ext))
        ticker.tick()
        if not c.ok or batch.errors:
            continue
        assert name and phone and jur and tz and lang  # narrowed by c.ok
        enc, mac = batch.cipher.encrypt, batch.cipher.lookup_hash
        out.append({
            "tenant_id": batch.tenant_id, "ext_id": ext, "name_enc": enc(name), "phone_enc": enc(phone),
            "phone_hmac": mac(phone), "id_number_enc": enc(id_number) if id_number else None,
            "id_number_hmac": mac(id_number) if id_number else None, "jurisdiction": jur,
            "timezone": tz, "language": lang, "status": "active", "created_at": batch.now,
        })
    first_seen(batch, keys, column="borrower_id", what="this borrower_id")
    taken = existing_ext_ids(batch, Borrower, (k for _, k in keys))
    for line, ext in keys:
        if ext in taken:
            batch.bad(line, "borrower_id", f"borrower {ext!r} already exists for this tenant")
    return out


def _contact_list_consents(batch: Batch, borrower_ids: set[int]) -> set[int]:
    """Borrowers (ids) with a separate, unwithdrawn contact_list consent on record."""
    ok: set[int] = set()
    for chunk in chunked(sorted(borrower_ids), LOOKUP_CHUNK):
        q = select(Consent.borrower_id).where(
            Consent.tenant_id == batch.tenant_id, Consent.borrower_id.in_(chunk),
            Consent.kind == "contact_list", Consent.form == "separate", Consent.withdrawn_at.is_(None),
            Consent.given_at <= batch.now)
        ok.update(batch.session.scalars(q))
    return ok


def prepare_contacts(batch: Batch, rows: list[Row], ticker: Ticker) -> list[dict[str, Any]]:
    """Validate contact rows: borrower known, lawful source, new contact_id."""
    borrowers = existing_borrowers(batch, (vals.get("borrower_id", "").strip() for _, vals in rows))
    staged: list[dict[str, Any]] = []
    keys: list[tuple[int, str]] = []
    listed: list[tuple[int, int]] = []  # (line, borrower id) of contact-list rows, checked below in bulk
    relations = partial(v.choice, allowed=v.CONTACT_RELATIONS)
    sources = import_contact_source  # refuses data-broker / call-log sources with their citations
    phones = {j: partial(v.phone_e164, jurisdiction=j) for j in v.JURISDICTIONS}
    for line, values in rows:
        c = Cells(batch, line, values)
        b_ext = c.get("borrower_id", v.ext_id)
        ext = c.get("contact_id", v.ext_id)
        name = c.get("name", v.required_text)
        relation = c.get("relation", relations)
        source = c.get("source", sources)
        borrower = borrowers.get(b_ext) if b_ext else None
        if b_ext and borrower is None:
            c.fail("borrower_id", _missing_borrower(b_ext))
        # The borrower's jurisdiction decides how a national number is read.
        phone = c.get("phone", phones[borrower[1]]) if borrower else None
        if source == "purchased":
            c.fail("source", PURCHASED_REFUSED)
        elif source == "contact_list" and borrower:
            listed.append((line, borrower[0]))
        if ext:
            keys.append((line, ext))
        ticker.tick()
        if c.ok:
            staged.append({"ext": ext, "borrower_id": borrower and borrower[0], "name": name, "phone": phone,
                           "relation": relation, "source": source})
    consented = _contact_list_consents(batch, {b for _, b in listed}) if listed else set()
    for line, borrower_id in listed:
        if borrower_id not in consented:
            batch.bad(line, "source", CONTACT_LIST_REFUSED)
    first_seen(batch, keys, column="contact_id", what="this contact_id")
    taken = existing_ext_ids(batch, Contact, (k for _, k in keys))
    for line, ext in keys:
        if ext in taken:
            batch.bad(line, "contact_id", f"contact {ext!r} already exists for this tenant")
    if batch.errors:
        return []
    enc, mac = batch.cipher.encrypt, batch.cipher.lookup_hash
    return [{
        "tenant_id": batch.tenant_id, "borrower_id": r["borrower_id"], "ext_id": r["ext"],
        "name_enc": enc(r["name"]), "phone_enc": enc(r["phone"]), "phone_hmac": mac(r["phone"]),
        "relation": r["relation"], "source": r["source"],
        "designated_by_borrower": r["source"] == "borrower_designated", "no_contact_requested": False,
        "created_at": batch.now,
    } for r in staged]


def prepare_consents(batch: Batch, rows: list[Row], ticker: Ticker) -> list[dict[str, Any]]:
    """Validate consent rows: borrower known, known kind and form, given before it was withdrawn."""
    from zoneinfo import ZoneInfo

    borrowers = existing_borrowers(batch, (vals.get("borrower_id", "").strip() for _, vals in rows))
    zones: dict[str, ZoneInfo] = {}
    out: list[dict[str, Any]] = []
    kinds = partial(v.choice, allowed=v.CONSENT_KINDS)
    forms = partial(v.choice, allowed=v.CONSENT_FORMS)
    clauses = partial(v.required_text, max_len=32)
    for line, values in rows:
        c = Cells(batch, line, values)
        b_ext = c.get("borrower_id", v.ext_id)
        kind = c.get("kind", kinds)
        form = c.get("form", forms)
        clause = c.opt("clause_version", clauses, "")
        borrower = borrowers.get(b_ext) if b_ext else None
        if b_ext and borrower is None:
            c.fail("borrower_id", _missing_borrower(b_ext))
        given = withdrawn = None
        if borrower:
            tz = zones.setdefault(borrower[2], ZoneInfo(borrower[2]))
            parse = partial(v.iso_datetime, date_tz=tz, not_after=batch.now)
            given = c.get("given_at", parse)
            withdrawn = c.opt("withdrawn_at", parse)
            if given and withdrawn and withdrawn < given:
                c.fail("withdrawn_at", "withdrawn before it was given")
        ticker.tick()
        if not c.ok or batch.errors:
            continue
        assert borrower and given
        out.append({
            "tenant_id": batch.tenant_id, "borrower_id": borrower[0], "kind": kind, "form": form,
            "clause_version": clause, "channel": "import", "evidence_hash": None,
            # Stored in UTC: SQLite keeps no offset, and instants must compare the same on both backends.
            "detail": {"import_sha256": batch.file_sha256}, "given_at": given.astimezone(dt.UTC),
            "withdrawn_at": withdrawn.astimezone(dt.UTC) if withdrawn else None,
        })
    return out
