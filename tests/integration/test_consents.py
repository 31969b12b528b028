"""The consent ledger: history kept, evidence as hashes, withdrawal acting on the next decision, contact-list
erasure (PIPL 47) and the CLI (both backends)."""

from __future__ import annotations

import datetime as dt
import io
import json
import sys

import pytest
from sqlalchemy import select
from test_attempts_seed import NOW, seed

from collectguard.adapters.db.models import AuditRecord, Borrower, Consent, Contact
from collectguard.cli import context
from collectguard.cli.main import main
from collectguard.errors import BadInput, Conflict, Denied, ImportRejected
from collectguard.services.attempts import contact_attempt_outcome, contact_attempt_request
from collectguard.services.clauses import clause_store
from collectguard.services.consents import (
    consent_give,
    consent_withdraw,
    consent_withdraw_kind,
    consents_of,
)
from collectguard.services.importer import import_csv
from collectguard.services.retention import ERASED
from conftest import create_database, make_container

BJ = dt.timezone(dt.timedelta(hours=8))
LATE = dt.datetime(2026, 4, 7, 22, 30, tzinfo=BJ)


@pytest.fixture
def w(container):
    return seed(container)


def give(c, w, kind, form="separate", **kw):
    with c.uow() as s:
        return consent_give(s, borrower=s.get(Borrower, w["borrower"]), kind=kind, form=form, channel="app",
                            actor="borrower", now=NOW, **kw).id


def withdraw(c, w, kind):
    with c.uow() as s:
        return consent_withdraw_kind(s, cipher=c.cipher, borrower_id=w["borrower"], kind=kind, actor="borrower",
                                     now=NOW)


def attempt(c, w, **kw):
    kw.setdefault("case_id", w["case"])
    if "contact_id" not in kw:
        kw.setdefault("role", "borrower")
    return contact_attempt_request(c, principal=w["collector"], channel="call", **kw)


def test_history_is_kept_and_a_withdrawn_consent_is_given_again_as_a_new_row(container, w):
    first = give(container, w, "third_party_contact")
    with pytest.raises(Conflict):
        give(container, w, "third_party_contact")  # one in force at a time
    out = withdraw(container, w, "third_party_contact")
    assert out["withdrawn"] == [first] and out["contacts_erased"] == 0
    with pytest.raises(Conflict):
        withdraw(container, w, "third_party_contact")
    second = give(container, w, "third_party_contact", form="bundled")
    with container.uow(write=False) as s:
        rows = consents_of(s, borrower_id=w["borrower"])
        assert [(r.id, r.withdrawn_at is not None) for r in rows] == [(first, True), (second, False)]
        with pytest.raises(Conflict):
            consent_withdraw(s, cipher=container.cipher, consent=rows[0], actor="x", now=NOW)


def test_evidence_is_only_hashes_of_the_clause_page_and_device(container, w):
    with container.uow() as s:
        clause = clause_store(s, tenant_id=w["lender"], code="TPC", version="2026.1", text="【第三方联系授权】…",
                              actor="t", now=NOW)
        with pytest.raises(Conflict):
            clause_store(s, tenant_id=w["lender"], code="TPC", version="2026.1", text="changed", actor="t", now=NOW)
    cid = give(container, w, "third_party_contact", clause_code="TPC", page_version="consent-page@7",
               device_fingerprint="ios-17|iPhone15,2|zh-Hans|secret-id-123")
    with container.uow(write=False) as s:
        row = s.get(Consent, cid)
        ev = row.detail["evidence"]
        assert ev["clause_sha256"] == clause.sha256 and row.clause_version == "2026.1"
        assert ev["page_version"] == "consent-page@7" and len(ev["device_sha256"]) == 64
        assert "secret-id-123" not in json.dumps(row.detail) and len(row.evidence_hash) == 64
        assert "consent.give" in set(s.scalars(select(AuditRecord.action)))
    with pytest.raises(BadInput) as exc:
        give(container, w, "marketing", clause_code="NOPE")
    assert exc.value.field == "clause_code"


@pytest.mark.parametrize("kw, field", [
    ({"kind": "telepathy"}, "kind"), ({"kind": "marketing", "form": "implied"}, "form"),
    ({"kind": "agreed_hours"}, "hours"), ({"kind": "agreed_hours", "hours": "25:00-26:00"}, "hours"),
    ({"kind": "marketing", "hours": "09:00-18:00"}, "hours"),
])
def test_malformed_consents_are_refused_naming_the_field(container, w, kw, field):
    with pytest.raises(BadInput) as exc:
        give(container, w, **kw)
    assert exc.value.field == field


def test_withdrawing_agreed_hours_acts_on_the_very_next_decision(container, w):
    give(container, w, "agreed_hours", hours="09:00-23:00")
    assert attempt(container, w, time=LATE)["decision"]["verdict"] == "allow"
    withdraw(container, w, "agreed_hours")
    with pytest.raises(Denied) as exc:
        attempt(container, w, time=LATE)
    assert "cn.quiet_hours" in {v["rule"] for v in exc.value.decision["violations"]}


def test_withdrawing_third_party_consent_stops_third_party_contact(container, w):
    give(container, w, "third_party_contact")
    with container.uow() as s:
        s.get(Borrower, w["borrower"]).status = "incapacitated"  # a lawful reason to reach a third party
    out = attempt(container, w, contact_id=w["emergency"], purpose="relay_message")
    contact_attempt_outcome(container, principal=w["collector"], attempt_id=out["attempt_id"], result="connected")
    withdraw(container, w, "third_party_contact")
    with pytest.raises(Denied) as exc:
        attempt(container, w, contact_id=w["emergency"], purpose="relay_message")
    assert "cn.consent_withdrawn" in {v["rule"] for v in exc.value.decision["violations"]}


def _contacts_csv(tmp_path, rows):
    path = tmp_path / "contacts.csv"
    path.write_text("borrower_id,contact_id,name,phone,relation,source\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_contact_list_data_lives_only_while_its_separate_consent_does(container, w, tmp_path):
    noop = lambda d, n: lambda k: None  # noqa: E731
    row = "B1,CL{n},赵{n},1380013{n:04d},contact_list_entry,contact_list"
    with pytest.raises(ImportRejected):  # no separate contact_list consent on record
        import_csv(container, kind="contacts", path=_contacts_csv(tmp_path, [row.format(n=1)]),
                   tenant_code="lender-a", progress=noop)
    give(container, w, "contact_list", form="bundled")
    with pytest.raises(ImportRejected):  # bundled in the general terms is not enough
        import_csv(container, kind="contacts", path=_contacts_csv(tmp_path, [row.format(n=1)]),
                   tenant_code="lender-a", progress=noop)
    assert withdraw(container, w, "contact_list")["contacts_erased"] == 1  # the seeded contact-list entry
    give(container, w, "contact_list")
    import_csv(container, kind="contacts", path=_contacts_csv(tmp_path, [row.format(n=n) for n in (1, 2)]),
               tenant_code="lender-a", progress=noop)
    out = withdraw(container, w, "contact_list")
    assert out["contacts_erased"] == 2  # the two imported since
    with container.uow(write=False) as s:
        listed = s.scalars(select(Contact).where(Contact.source == "contact_list")).all()
        assert all(ct.phone_hmac == ERASED and container.cipher.decrypt(ct.name_enc) == "" for ct in listed)
        assert all(ct.no_contact_requested for ct in listed)
        kept = s.get(Contact, w["emergency"])
        assert container.cipher.decrypt(kept.phone_enc) == "+8613900139000"  # designated contacts stay
        payload = json.loads(s.scalars(select(AuditRecord.payload).where(AuditRecord.action == "consent.withdraw")
                                       .order_by(AuditRecord.id.desc())).first())
    assert payload["contact_list_contacts_erased"] == 2 and "赵" not in json.dumps(payload, ensure_ascii=False)
    with pytest.raises(ImportRejected):  # withdrawn: nothing more is stored
        import_csv(container, kind="contacts", path=_contacts_csv(tmp_path, [row.format(n=3)]),
                   tenant_code="lender-a", progress=noop)


# ---- CLI (a database with real commits) -------------------------------------------------------------

@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def seeded(request, tmp_path_factory):
    db = create_database(request.param, tmp_path_factory)
    c = make_container(db)
    w = seed(c)
    give(c, w, "agreed_hours", hours="09:00-23:00")
    yield db, c, w
    db.close()


@pytest.fixture
def cli(seeded, monkeypatch, capsys):
    monkeypatch.setenv("COLLECTGUARD_DATABASE_URL", seeded[0].url)
    monkeypatch.setattr(context, "_CONTAINER", None)
    monkeypatch.setattr(context, "DATABASE_URL", None)

    def run(*args):
        monkeypatch.setattr(sys, "stdin", io.StringIO(""))
        with pytest.raises(SystemExit) as exit_:
            main(list(args))
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return int(exit_.value.code or 0), out, err

    yield run
    if context._CONTAINER is not None:
        context._CONTAINER.engine.dispose()


def test_cli_lists_and_withdraws_then_the_guard_denies(cli, seeded):
    _db, c, w = seeded
    rc, out, _ = cli("consents", "list", "--borrower", "B1", "--tenant", "lender-a")
    assert rc == 0 and [x["kind"] for x in json.loads(out)["consents"]] == ["agreed_hours"]
    assert attempt(c, w, time=LATE)["decision"]["verdict"] == "allow"  # 22:30, inside the agreed hours
    rc, out, _ = cli("consents", "withdraw", "--borrower", "B1", "--kind", "agreed_hours", "--tenant", "lender-a")
    assert rc == 0 and json.loads(out)["kinds"] == ["agreed_hours"]
    with pytest.raises(Denied):  # another process withdrew: the very next decision sees it
        attempt(c, w, time=LATE + dt.timedelta(minutes=5))
    rc, out, _ = cli("consents", "list", "--borrower", "B1", "--tenant", "lender-a")
    assert json.loads(out)["consents"][0]["active"] is False
    rc, _, err = cli("consents", "withdraw", "--borrower", "B1", "--kind", "agreed_hours", "--tenant", "lender-a")
    assert rc == 2 and "no agreed_hours consent" in err
    rc, _, err = cli("consents", "list", "--borrower", "NOPE", "--tenant", "lender-a")
    assert rc == 2 and "no borrower" in err
    rc, _, err = cli("consents", "withdraw", "--borrower", "B1", "--kind", "telepathy", "--tenant", "lender-a")
    assert rc == 2 and "kind" in err
