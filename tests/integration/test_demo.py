"""The demo portfolio on SQLite and PostgreSQL: deterministic, complete, realistic, spread over buckets."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from collectguard.adapters.db.models import (
    AuditRecord,
    Borrower,
    Consent,
    Contact,
    Installment,
    Loan,
    Payment,
    Tenant,
)
from collectguard.domain import validation as v
from collectguard.errors import Conflict
from collectguard.services import demo
from collectguard.services.demo import demo_seed, demo_seed_if_empty
from conftest import FIXED_NOW, create_database, make_container

REF = FIXED_NOW.date()
EDGES = ((0, "M0"), (30, "M1"), (60, "M2"), (90, "M3"), (120, "M4"), (150, "M5"), (180, "M6"))


def snapshot(c) -> dict[str, list]:
    """Everything the demo wrote, PII decrypted, database ids replaced by external ids."""
    dec = c.cipher.decrypt
    with c.uow(write=False) as s:
        b_ext = dict(s.execute(select(Borrower.id, Borrower.ext_id)).all())
        l_ext = dict(s.execute(select(Loan.id, Loan.ext_id)).all())
        return {
            "borrowers": sorted((b.ext_id, dec(b.name_enc), dec(b.phone_enc),
                                 dec(b.id_number_enc) if b.id_number_enc else None, b.jurisdiction,
                                 b.timezone, b.language, b.status) for b in s.scalars(select(Borrower))),
            "loans": sorted((ln.ext_id, b_ext[ln.borrower_id], ln.product, ln.lender_type, ln.principal,
                             ln.currency, ln.annual_rate, ln.upfront_fees, ln.disbursed_on, ln.lpr_at_signing)
                            for ln in s.scalars(select(Loan))),
            "installments": sorted((l_ext[i.loan_id], i.seq, i.due_date, i.principal_due, i.interest_due,
                                    i.fee_due) for i in s.scalars(select(Installment))),
            "payments": sorted((l_ext[p.loan_id], p.paid_on, p.amount, p.ext_ref)
                               for p in s.scalars(select(Payment))),
            "contacts": sorted((k.ext_id, b_ext[k.borrower_id], dec(k.name_enc), dec(k.phone_enc), k.relation,
                                k.source, k.no_contact_requested) for k in s.scalars(select(Contact))),
            "consents": sorted((b_ext[g.borrower_id], g.kind, g.form, g.clause_version, g.evidence_hash,
                                g.given_at.replace(tzinfo=None), g.withdrawn_at is not None)
                               for g in s.scalars(select(Consent))),
        }


def bucket(dpd: int | None) -> str:
    if dpd is None:
        return "closed"
    name = "M6+"
    for edge, label in reversed(EDGES):
        if dpd <= edge:
            name = label
    return name


def buckets(c, as_of: dt.date) -> Counter:
    """DESIGN §13, computed independently: payments cover installments oldest first."""
    with c.uow(write=False) as s:
        dues: dict[int, list] = defaultdict(list)
        for loan_id, due, p, i, f in s.execute(select(Installment.loan_id, Installment.due_date,
                                                      Installment.principal_due, Installment.interest_due,
                                                      Installment.fee_due)):
            dues[loan_id].append((due, p + i + f))
        paid: dict[int, Decimal] = defaultdict(Decimal)
        for loan_id, on, amount in s.execute(select(Payment.loan_id, Payment.paid_on, Payment.amount)):
            if on <= as_of:
                paid[loan_id] += amount
        loan_ids = s.scalars(select(Loan.id)).all()
    result: Counter = Counter()
    for loan_id in loan_ids:
        covered, oldest = paid[loan_id], None
        for due, total in sorted(dues[loan_id]):
            if covered >= total:
                covered -= total
            else:
                oldest = due
                break
        result[bucket(None if oldest is None else max(0, (as_of - oldest).days))] += 1
    return result


def test_same_seed_same_portfolio_and_another_seed_another(container, database, tmp_path_factory):
    first = demo_seed(container, loans=200, seed=7)
    other_db = create_database(database.backend, tmp_path_factory)
    try:
        again = make_container(other_db)
        assert demo_seed(again, loans=200, seed=7) == first
        assert snapshot(again) == snapshot(container)
    finally:
        other_db.close()
    third_db = create_database("sqlite", tmp_path_factory)
    different = make_container(third_db)
    demo_seed(different, loans=200, seed=8)
    assert snapshot(different)["borrowers"] != snapshot(container)["borrowers"]
    third_db.close()


def test_counts_tenants_schedules_and_audit(container):
    summary = demo_seed(container, loans=600, seed=42)
    assert summary["tenants"] == ["demo-lender", "demo-agency"] and summary["loans"] == 600
    assert summary["reference_date"] == REF.isoformat()
    models = {"borrowers": Borrower, "loans": Loan, "installments": Installment, "payments": Payment,
              "contacts": Contact, "consents": Consent}
    with container.uow(write=False) as s:
        for name, model in models.items():
            assert s.scalar(select(func.count()).select_from(model)) == summary[name], name
        assert 400 < summary["borrowers"] < 600  # some borrowers have two loans
        tenants = {t.code: (t.kind, t.licensed) for t in s.scalars(select(Tenant))}
        assert tenants["demo-lender"] == ("lender", True) and tenants["demo-agency"][0] == "agency"
        per_loan: dict[int, list] = defaultdict(list)
        for i in s.scalars(select(Installment)):
            per_loan[i.loan_id].append(i)
        loans = s.scalars(select(Loan)).all()
        for loan in loans:
            rows = per_loan[loan.id]
            assert rows, loan.ext_id
            assert sum(r.principal_due for r in rows) == loan.principal, loan.ext_id  # amortisation is exact
            assert all(r.due_date > loan.disbursed_on for r in rows)
        types = Counter(ln.lender_type for ln in loans)
        assert set(types) == set(v.LENDER_TYPES) and types["licensed_institution"] > types["unlicensed"]
        assert {ln.lpr_at_signing for ln in loans if ln.lender_type == "private"} <= {
            Decimal("3.45"), Decimal("3.35"), Decimal("3.1"), Decimal("3")}
        assert all(ln.lpr_at_signing is None for ln in loans if ln.lender_type != "private")
        assert any(ln.upfront_fees > 0 and ln.annual_rate > 36 for ln in loans)  # illegal debts to find
        assert {ln.currency for ln in loans} == {"CNY", "USD", "EUR"}
        assert any(p.startswith("现金贷-7天") for p in (ln.product for ln in loans))
        audits = s.scalars(select(AuditRecord).where(AuditRecord.action == "demo.seed")).all()
    assert len(audits) == 1 and json.loads(audits[0].payload)["loans"] == 600


def test_people_are_valid_and_contacts_are_lawfully_sourced(container):
    demo_seed(container, loans=600, seed=3)
    dec = container.cipher.decrypt
    with container.uow(write=False) as s:
        borrowers = s.scalars(select(Borrower)).all()
        contacts = s.scalars(select(Contact)).all()
        consents = s.scalars(select(Consent)).all()
    jurisdictions = Counter(b.jurisdiction for b in borrowers)
    assert jurisdictions["CN"] > 0.85 * len(borrowers)
    assert {b.timezone for b in borrowers if b.jurisdiction == "CN"} == {"Asia/Shanghai", "Asia/Urumqi"}
    for b in borrowers:
        phone = dec(b.phone_enc)
        assert v.phone_e164(phone, jurisdiction=b.jurisdiction) == phone
        assert b.phone_hmac == container.cipher.lookup_hash(phone)
        assert v.timezone_name(b.timezone) == b.timezone and v.language_tag(b.language) == b.language
        if b.jurisdiction == "CN":
            id_number = dec(b.id_number_enc)
            assert v.cn_resident_id(id_number, today=REF) == id_number
            assert "\u4e00" <= dec(b.name_enc)[0] <= "\u9fff"  # a Chinese name
    separate_list = {g.borrower_id for g in consents if g.kind == "contact_list" and g.form == "separate"}
    designated = Counter(k.borrower_id for k in contacts if k.source == "borrower_designated")
    assert set(designated) == {b.id for b in borrowers} and set(designated.values()) <= {1, 2}
    listed = {k.borrower_id for k in contacts if k.source == "contact_list"}
    assert listed and listed <= separate_list
    assert {k.source for k in contacts} == {"borrower_designated", "contact_list"}
    kinds = Counter((g.kind, g.form) for g in consents)
    assert kinds[("third_party_contact", "separate")] > kinds[("third_party_contact", "bundled")] > 0
    assert kinds[("agreed_hours", "separate")] > 0 and any(g.withdrawn_at for g in consents)
    assert all(g.detail and "hours" in g.detail for g in consents if g.kind == "agreed_hours")


def test_buckets_are_spread_over_m0_to_m6_plus_and_closed(container):
    demo_seed(container, loans=1000, seed=42)
    spread = buckets(container, REF)
    assert sum(spread.values()) == 1000
    for name in ("M0", "M1", "M2", "M3", "M4", "M5", "M6", "M6+", "closed"):
        assert spread[name] >= 10, (name, spread)
    assert spread["M0"] > 300 and spread["closed"] > 80 and spread["M6+"] > 30


def test_seeding_twice_is_refused_and_seed_if_empty_only_seeds_an_empty_database(container, monkeypatch):
    calls = []

    def small(c, **kwargs):
        calls.append(kwargs)
        return demo_seed(c, loans=30, seed=1)

    monkeypatch.setattr(demo, "demo_seed", small)
    assert demo_seed_if_empty(container)["loans"] == 30
    assert demo_seed_if_empty(container) is None
    assert len(calls) == 1
    with pytest.raises(Conflict):
        demo_seed(container, loans=5)


def test_large_portfolios_go_in_chunks(container, monkeypatch):
    monkeypatch.setattr(demo, "CHUNK_LOANS", 40)
    advanced: list[int] = []
    summary = demo_seed(container, loans=130, seed=5, progress=lambda d, total: advanced.append)
    assert advanced == [40, 40, 40, 10] and summary["loans"] == 130
    with container.uow(write=False) as s:
        ext_ids = s.scalars(select(Loan.ext_id)).all()
        assert len(set(ext_ids)) == 130 and max(ext_ids) == "L0000130"
        assert s.scalar(select(func.count(func.distinct(Borrower.ext_id)))) == summary["borrowers"]
