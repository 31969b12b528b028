"""The demo portfolio: a synthetic, realistic book of overdue and current loans (DESIGN §7 ``demo``).

Deterministic: ``random.Random(seed)`` drives every choice and dates are placed relative to the
reference date, ``c.clock()``'s date. The same seed on the same day gives the same portfolio
(the ciphertexts differ, as AES-GCM nonces are random; the decrypted data is identical).

Rows are written with set-based inserts, in chunks of ``CHUNK_LOANS`` loans, in one transaction
with one audit record, so a demo of a million loans runs in bounded memory.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from collectguard.adapters.crypto import PiiCipher
from collectguard.adapters.db.models import Borrower, Consent, Contact, Installment, Loan, Payment
from collectguard.bootstrap import Container
from collectguard.errors import BadInput, Conflict
from collectguard.services.audit import audit_append
from collectguard.services.demo_loans import draw_loan, place
from collectguard.services.demo_people import PhoneBook, contact_person, person
from collectguard.services.import_common import bulk_insert, ids_by_ext_id
from collectguard.services.tenancy import tenant_ensure

DEMO_LENDER = "demo-lender"
DEMO_AGENCY = "demo-agency"
CHUNK_LOANS = 2_000
TABLES = ("borrowers", "loans", "installments", "payments", "contacts", "consents")
RELATIONS = ("spouse", "relative", "emergency_contact", "colleague")
RELATION_WEIGHTS = (30, 35, 20, 15)
HOURS = ("08:00-21:00", "07:30-22:30", "09:00-20:00")

Progress = Callable[[str, int], Callable[[int], None]]


def _no_progress(n: int) -> None:
    return None


def _quiet(description: str, total: int) -> Callable[[int], None]:
    return _no_progress


def _consents(rng: random.Random, seed: int, ext: str, given: dt.datetime, now: dt.datetime) -> \
        list[dict[str, Any]]:
    """The borrower's consent records: kind, form, clause version, evidence, withdrawal."""
    wanted: list[tuple[str, str, str]] = []
    roll = rng.random()
    if roll < 0.5:
        wanted.append(("third_party_contact", "separate", "TPC-2025.1"))
    elif roll < 0.7:
        wanted.append(("third_party_contact", "bundled", "UA-2024.3"))
    roll = rng.random()
    if roll < 0.03:
        wanted.append(("contact_list", "separate", "CL-2025.2"))
    elif roll < 0.08:
        wanted.append(("contact_list", "bundled", "UA-2024.3"))
    if rng.random() < 0.6:
        wanted.append(("outsourcing_notice", "separate", "OUT-2025.1"))
    if rng.random() < 0.1:
        wanted.append(("data_sharing_agency", "separate", "DSA-2025.1"))
    if rng.random() < 0.04:
        wanted.append(("agreed_hours", "separate", "HRS-2025.1"))
    out = []
    for kind, form, clause in wanted:
        withdrawn = None
        if rng.random() < 0.08:
            withdrawn = min(now, given + dt.timedelta(days=rng.randint(1, 200), hours=rng.randint(0, 23)))
            withdrawn = withdrawn if withdrawn > given else None
        evidence = hashlib.sha256(f"demo-consent:{seed}:{ext}:{kind}:{clause}".encode()).hexdigest()
        out.append({"kind": kind, "form": form, "clause_version": clause, "channel": "app",
                    "evidence_hash": evidence, "given_at": given, "withdrawn_at": withdrawn,
                    "detail": {"hours": rng.choice(HOURS)} if kind == "agreed_hours" else None})
    return out


def _seed_chunk(s: Session, cipher: PiiCipher, rng: random.Random, phones: PhoneBook, *, tenant_id: int,
                n: int, seed: int, ref: dt.date, now: dt.datetime, counts: dict[str, int]) -> None:
    people: list[dict[str, Any]] = []
    loans: list[tuple[int, Any, list[Any], list[Any]]] = []  # (person index, loan, schedule, payments)
    for _ in range(n):
        if not people or rng.random() < 0.88:
            people.append(person(rng, phones, ref=ref) | {"first_loan": None})
        who = len(people) - 1 if people[-1]["first_loan"] is None else rng.randrange(len(people))
        loan = draw_loan(rng, people[who]["jurisdiction"])
        _, rows, payments = place(rng, loan, ref)
        first = people[who]["first_loan"]
        people[who]["first_loan"] = min(first, loan.disbursed_on) if first else loan.disbursed_on
        loans.append((who, loan, rows, payments))

    enc, mac = cipher.encrypt, cipher.lookup_hash
    b_rows, contacts, consents = [], [], []
    for i, p in enumerate(people):
        ext = f"B{counts['borrowers'] + i + 1:07d}"
        roll = rng.random()
        status = "deceased" if roll < 0.003 else "incapacitated" if roll < 0.005 else "active"
        b_rows.append({"tenant_id": tenant_id, "ext_id": ext, "name_enc": enc(p["name"]),
                       "phone_enc": enc(p["phone"]), "phone_hmac": mac(p["phone"]),
                       "id_number_enc": enc(p["id_number"]) if p["id_number"] else None,
                       "id_number_hmac": mac(p["id_number"]) if p["id_number"] else None,
                       "jurisdiction": p["jurisdiction"], "timezone": p["timezone"],
                       "language": p["language"], "status": status, "created_at": now})
        local = dt.datetime.combine(p["first_loan"], dt.time(rng.randint(9, 20), rng.randint(0, 59)),
                                    tzinfo=ZoneInfo(p["timezone"]))
        given = min(now, local.astimezone(dt.UTC))
        granted = _consents(rng, seed, ext, given, now)
        consents += [(i, g) for g in granted]
        wanted = [rng.choices(RELATIONS, weights=RELATION_WEIGHTS)[0] for _ in range(rng.choice((1, 1, 2)))]
        designated = [(r, "borrower_designated") for r in wanted]
        if any(g["kind"] == "contact_list" and g["form"] == "separate" for g in granted):
            designated += [("contact_list_entry", "contact_list")] * rng.randint(1, 2)
        for relation, source in designated:
            name, phone = contact_person(rng, phones, p, relation)
            refused = source == "borrower_designated" and rng.random() < 0.03
            contacts.append((i, name, phone, relation, source, refused, rng.randint(1, 60)))

    bulk_insert(s, Borrower, b_rows, _no_progress)
    by_ext = ids_by_ext_id(s, Borrower, tenant_id, [r["ext_id"] for r in b_rows])
    b_ids = [by_ext[r["ext_id"]] for r in b_rows]
    l_rows = [{"tenant_id": tenant_id, "ext_id": f"L{counts['loans'] + j + 1:07d}", "borrower_id": b_ids[who],
               "product": ln.product, "lender_type": ln.lender_type, "principal": ln.principal,
               "currency": ln.currency, "annual_rate": ln.annual_rate, "upfront_fees": ln.upfront_fees,
               "disbursed_on": ln.disbursed_on, "lpr_at_signing": ln.lpr_at_signing, "dpd": 0, "bucket": "M0",
               "debt_status": "valid", "created_at": now} for j, (who, ln, _, _) in enumerate(loans)]
    bulk_insert(s, Loan, l_rows, _no_progress)
    by_ext = ids_by_ext_id(s, Loan, tenant_id, [r["ext_id"] for r in l_rows])
    l_ids = [by_ext[r["ext_id"]] for r in l_rows]
    inst = [{"loan_id": l_ids[j], "seq": k, "due_date": due, "principal_due": pr, "interest_due": it,
             "fee_due": fe} for j, (_, _, rows, _) in enumerate(loans)
            for k, (due, pr, it, fe) in enumerate(rows, start=1)]
    pays = [{"loan_id": l_ids[j], "paid_on": on, "amount": amt, "created_at": now,
             "ext_ref": f"DEMO-{counts['loans'] + j + 1}-{k}"}
            for j, (_, _, _, ps) in enumerate(loans) for k, (on, amt) in enumerate(ps, 1)]
    c_rows = [{"tenant_id": tenant_id, "borrower_id": b_ids[i], "name_enc": enc(name),
               "phone_enc": enc(phone), "phone_hmac": mac(phone), "relation": relation, "source": source,
               "designated_by_borrower": source == "borrower_designated",
               "no_contact_requested": refused,
               "no_contact_at": now - dt.timedelta(days=days) if refused else None, "created_at": now,
               "ext_id": f"C{counts['contacts'] + k + 1:07d}"}
              for k, (i, name, phone, relation, source, refused, days) in enumerate(contacts)]
    g_rows = [{"tenant_id": tenant_id, "borrower_id": b_ids[i], **g} for i, g in consents]
    for model, records in ((Installment, inst), (Payment, pays), (Contact, c_rows), (Consent, g_rows)):
        bulk_insert(s, model, records, _no_progress)
    for name, records in zip(TABLES, (b_rows, l_rows, inst, pays, c_rows, g_rows), strict=True):
        counts[name] += len(records)


def demo_seed(c: Container, *, loans: int = 10_000, seed: int = 42,
              progress: Progress = _quiet) -> dict[str, Any]:
    """Seed tenants ``demo-lender`` (licensed lender) and ``demo-agency`` with ``loans`` synthetic loans.

    Raises :class:`Conflict` when the demo lender already has loans (seed a fresh database instead).
    Returns the counts per table, the tenant codes, the seed and the reference date.
    """
    if loans < 1:
        raise BadInput("the demo needs at least one loan", field="loans")
    rng = random.Random(seed)  # noqa: S311 - reproducible synthetic data, not a secret
    now = c.clock()
    ref = now.date()
    phones = PhoneBook()
    counts = dict.fromkeys(TABLES, 0)
    advance = progress("seeding demo portfolio", loans)
    with c.uow() as s:
        lender = tenant_ensure(s, code=DEMO_LENDER, name="示例消费金融 Demo Consumer Finance", kind="lender",
                               actor="demo", now=now)
        tenant_ensure(s, code=DEMO_AGENCY, name="示例催收服务 Demo Collection Agency", kind="agency",
                      actor="demo", now=now)
        if s.scalar(select(Loan.id).where(Loan.tenant_id == lender.id).limit(1)) is not None:
            raise Conflict(f"tenant {DEMO_LENDER} already has loans; seed the demo into a fresh database")
        done = 0
        while done < loans:
            n = min(CHUNK_LOANS, loans - done)
            _seed_chunk(s, c.cipher, rng, phones, tenant_id=lender.id, n=n, seed=seed, ref=ref, now=now,
                        counts=counts)
            done += n
            advance(n)
        audit_append(s, tenant_id=lender.id, actor="demo", action="demo.seed", subject=f"tenant:{lender.id}",
                     payload={"seed": seed, "reference_date": ref.isoformat(), **counts}, now=now)
    return {"tenants": [DEMO_LENDER, DEMO_AGENCY], "seed": seed, "reference_date": ref.isoformat(), **counts}


def demo_seed_if_empty(c: Container) -> dict[str, Any] | None:
    """Seed the default demo (10,000 loans) when the database has no loan at all; else None."""
    with c.uow(write=False) as s:
        if s.scalar(select(Loan.id).limit(1)) is not None:
            return None
    try:
        return demo_seed(c)
    except Conflict:  # another process seeded it in the meantime
        return None
