"""CSV import on SQLite and PostgreSQL: all or nothing, every bad row named, PII only encrypted."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from collectguard.adapters.db.models import (
    AuditRecord,
    Borrower,
    Consent,
    Contact,
    Installment,
    Loan,
)
from collectguard.errors import BadInput, ImportRejected
from collectguard.services.importer import import_csv

DATA = Path(__file__).parent.parent / "data"
KINDS = ("borrowers", "loans", "installments", "payments", "consents", "contacts")
BORROWERS_HEADER = "borrower_id,name,phone,id_number,jurisdiction,timezone,language\n"


def quiet(description: str, total: int):
    return lambda n: None


def run(c, kind: str, path: Path, tenant: str = "lender-a") -> dict:
    return import_csv(c, kind=kind, path=path, tenant_code=tenant, progress=quiet)


def csv_file(tmp_path: Path, body: str, name: str = "f.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(body.encode(encoding))
    return path


def count(c, model) -> int:
    with c.uow(write=False) as s:
        return s.scalar(select(func.count()).select_from(model))


def rejected(c, kind: str, path: Path, tenant: str = "lender-a") -> list[dict]:
    with pytest.raises(ImportRejected) as exc:
        run(c, kind, path, tenant)
    return exc.value.errors


def import_samples(c, upto: str = "contacts") -> None:
    for kind in KINDS[: KINDS.index(upto) + 1]:
        run(c, kind, DATA / f"{kind}.csv")


def test_every_kind_imports_with_exact_values_and_one_audit_record_each(container):
    for kind, rows in zip(KINDS, (8, 8, 22, 12, 7, 6), strict=True):
        result = run(container, kind, DATA / f"{kind}.csv")
        assert result == {"kind": kind, "rows": rows, "tenant": "lender-a"}
    cipher = container.cipher
    with container.uow(write=False) as s:
        b = s.scalars(select(Borrower).where(Borrower.ext_id == "B0002")).one()
        assert cipher.decrypt(b.name_enc) == "李秀英"
        assert cipher.decrypt(b.phone_enc) == "+8613800001002"  # "138 0000 1002" normalised to E.164
        assert b.phone_hmac == cipher.lookup_hash("+8613800001002")
        assert cipher.decrypt(b.id_number_enc) == "310104198511224568"
        assert s.scalars(select(Borrower.language).where(Borrower.ext_id == "B0008")).one() == "de-DE"
        b5 = s.scalars(select(Borrower).where(Borrower.ext_id == "B0005")).one()
        assert cipher.decrypt(b5.id_number_enc).endswith("X")  # lower-case x normalised
        loan = s.scalars(select(Loan).where(Loan.ext_id == "L0004")).one()
        assert (loan.principal, loan.annual_rate, loan.upfront_fees) == (Decimal("3000.00"), Decimal(365),
                                                                         Decimal("900.00"))
        assert s.scalars(select(Loan.lpr_at_signing).where(Loan.ext_id == "L0003")).one() == Decimal("3")
        dues = s.scalars(select(Installment.principal_due).join(Loan, Loan.id == Installment.loan_id)
                         .where(Loan.ext_id == "L0001")).all()
        assert sum(dues) == Decimal("12000.00") and len(dues) == 12
        contact = s.scalars(select(Contact).where(Contact.ext_id == "C0005")).one()
        assert (contact.source, contact.designated_by_borrower) == ("contact_list", False)
        assert s.scalars(select(Contact.designated_by_borrower).where(Contact.ext_id == "C0001")).one()
        withdrawn = s.scalars(select(Consent).where(Consent.kind == "agreed_hours")).one()
        assert withdrawn.withdrawn_at is not None and withdrawn.given_at < withdrawn.withdrawn_at
        audits = s.scalars(select(AuditRecord).where(AuditRecord.action == "data.import")
                           .order_by(AuditRecord.seq)).all()
    assert [json.loads(a.payload)["kind"] for a in audits] == list(KINDS)
    first = json.loads(audits[0].payload)
    assert first == {"kind": "borrowers", "file": "borrowers.csv", "rows": 8,
                     "sha256": hashlib.sha256((DATA / "borrowers.csv").read_bytes()).hexdigest()}


def test_no_plaintext_name_or_phone_is_stored(container):
    import_samples(container)
    needles = ["王建国", "李秀英", "王丽", "13800001001", "13800002001", "110101199003071233", "Emily"]
    with container.uow(write=False) as s:
        dumps = []
        for table in ("borrower", "contact", "audit_record", "consent"):
            for row in s.execute(text(f"SELECT * FROM {table}")):
                for value in row:
                    dumps.append(bytes(value).decode("latin-1") if isinstance(value, bytes | memoryview)
                                 else str(value))
    blob = "\n".join(dumps)
    for needle in needles:
        assert needle not in blob


def test_one_bad_row_among_good_ones_imports_nothing_and_names_row_and_column(container):
    audits = count(container, AuditRecord)
    errors = rejected(container, "borrowers", DATA / "borrowers_bad_row.csv")
    assert [(e["row"], e["column"]) for e in errors] == [(3, "phone")]
    assert "not a valid CN phone number" in errors[0]["reason"]
    assert count(container, Borrower) == 0
    assert count(container, AuditRecord) == audits


def test_every_bad_row_is_listed(tmp_path, container):
    path = csv_file(tmp_path, BORROWERS_HEADER
                    + "B1,王一,13800001001,110101199003071233,CN,Asia/Shanghai,zh-CN\n"
                    + "B2,,13800001002,110101199003071234,CN,Asia/Beijing,zh-CN\n"
                    + "B3,王三,13800001003,,XX,Asia/Shanghai,zh-CN\n"
                    + "\n"
                    + "B1,王四,+1 212 555 0100,,US,America/New_York,klingon\n")
    errors = rejected(container, "borrowers", path)
    assert [(e["row"], e["column"]) for e in errors] == [
        (3, "id_number"), (3, "name"), (3, "timezone"), (4, "jurisdiction"), (6, "borrower_id"),
        (6, "language")]
    assert "first on row 2" in errors[4]["reason"]


def test_references_must_exist(tmp_path, container):
    import_samples(container, upto="borrowers")
    loans = csv_file(tmp_path, "loan_id,borrower_id,lender_type,principal,currency,annual_rate,disbursed_on\n"
                     "L1,B0001,licensed_institution,1000,CNY,12,2026-01-01\n"
                     "L2,B9999,licensed_institution,1000,CNY,12,2026-01-01\n", "loans.csv")
    assert [(e["row"], e["column"]) for e in rejected(container, "loans", loans)] == [(3, "borrower_id")]
    inst = csv_file(tmp_path, "loan_id,seq,due_date,principal_due,interest_due\nL404,1,2026-02-01,100,1\n")
    assert "import the loans first" in rejected(container, "installments", inst)[0]["reason"]
    pay = csv_file(tmp_path, "loan_id,paid_on,amount\nL404,2026-02-01,100\n")
    assert rejected(container, "payments", pay)[0]["column"] == "loan_id"
    contacts = csv_file(tmp_path, "borrower_id,contact_id,name,phone,relation,source\n"
                        "B404,C1,王丽,13800002001,spouse,borrower_designated\n")
    assert rejected(container, "contacts", contacts)[0]["column"] == "borrower_id"
    consents = csv_file(tmp_path, "borrower_id,kind,form,given_at\nB404,marketing,separate,2026-01-01\n")
    assert rejected(container, "consents", consents)[0]["column"] == "borrower_id"
    # Another tenant's borrower is as good as absent.
    assert rejected(container, "loans", DATA / "loans.csv", tenant="lender-b")[0]["column"] == "borrower_id"


def test_duplicates_within_the_file_and_against_the_database(tmp_path, container):
    import_samples(container, upto="installments")
    errors = rejected(container, "borrowers", DATA / "borrowers.csv")
    assert len(errors) == 8 and all("already exists" in e["reason"] for e in errors)
    inst = csv_file(tmp_path, "loan_id,seq,due_date,principal_due,interest_due,fee_due\n"
                    "L0003,1,2025-07-20,1000,100,0\n"
                    "L0003,1,2025-08-20,1000,100,0\n"
                    "L0001,12,2026-09-15,1083.93,16.26,0\n")
    errors = rejected(container, "installments", inst)
    assert [(e["row"], e["column"]) for e in errors] == [(3, "seq"), (4, "seq")]
    assert "first on row 2" in errors[0]["reason"] and "already has an installment 12" in errors[1]["reason"]
    loans = csv_file(tmp_path, "loan_id,borrower_id,lender_type,principal,currency,annual_rate,disbursed_on\n"
                     "L9,B0001,licensed_institution,1000,CNY,12,2026-01-01\n"
                     "L9,B0002,licensed_institution,1000,CNY,12,2026-01-01\n"
                     "L0001,B0002,licensed_institution,1000,CNY,12,2026-01-01\n")
    assert [(e["row"], e["column"]) for e in rejected(container, "loans", loans)] == [(3, "loan_id"),
                                                                                    (4, "loan_id")]
    assert count(container, Installment) == 22


CONTACT_LIST_ROW = ("borrower_id,contact_id,name,phone,relation,source\n"
                    "B0001,C9,路人甲,13800009001,contact_list_entry,{}\n")


@pytest.mark.parametrize("consent", [None, "bundled,", "separate,2026-03-01"])
def test_contact_list_numbers_need_a_separate_unwithdrawn_consent(tmp_path, container, consent):
    import_samples(container, upto="borrowers")
    if consent:
        form, withdrawn = consent.split(",")
        run(container, "consents", csv_file(tmp_path, "borrower_id,kind,form,given_at,withdrawn_at\n"
                                            f"B0001,contact_list,{form},2026-01-01,{withdrawn}\n", "c.csv"))
    errors = rejected(container, "contacts", csv_file(tmp_path, CONTACT_LIST_ROW.format("contact_list")))
    assert [(e["row"], e["column"]) for e in errors] == [(2, "source")]
    assert "PIPL art. 6" in errors[0]["reason"] and "art. 13" in errors[0]["reason"]
    assert "GB/T 45251" in errors[0]["reason"]


def test_contact_list_number_with_a_separate_consent_is_accepted(tmp_path, container):
    import_samples(container, upto="borrowers")
    consent = csv_file(tmp_path, "borrower_id,kind,form,clause_version,given_at\n"
                       "B0001,contact_list,separate,CL-1,2026-01-01T10:00:00+08:00\n", "c.csv")
    run(container, "consents", consent)
    contacts = csv_file(tmp_path, CONTACT_LIST_ROW.format("Contact_List"))  # enumerations ignore case
    assert run(container, "contacts", contacts)["rows"] == 1
    with container.uow(write=False) as s:
        assert s.scalars(select(Contact.source)).all() == ["contact_list"]


def test_purchased_numbers_are_always_refused(tmp_path, container):
    import_samples(container, upto="consents")
    errors = rejected(container, "contacts", csv_file(tmp_path, CONTACT_LIST_ROW.format("purchased")))
    assert "CN:CL:253-1" in errors[0]["reason"] and "CN:PIPL:10" in errors[0]["reason"]
    assert count(container, Contact) == 0


def test_bom_file_imports_and_gbk_or_utf16_files_are_refused(tmp_path, container):
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + (DATA / "borrowers.csv").read_bytes())
    assert run(container, "borrowers", bom)["rows"] == 8
    gbk = csv_file(tmp_path, (DATA / "borrowers_bad_row.csv").read_text("utf-8"), "gbk.csv", "gbk")
    with pytest.raises(BadInput, match="GBK") as exc:
        run(container, "borrowers", gbk)
    assert exc.value.line == 2
    utf16 = csv_file(tmp_path, BORROWERS_HEADER, "u16.csv", "utf-16")
    with pytest.raises(BadInput, match="UTF-16"):
        run(container, "borrowers", utf16)
    assert count(container, Borrower) == 8


def test_header_problems_name_the_columns(tmp_path, container):
    path = csv_file(tmp_path, "borrower_id,name,phone,jurisdiction,mobile,wechat\n"
                    "B1,王一,13800001001,CN,x,y\n")
    errors = rejected(container, "borrowers", path)
    assert {(e["row"], e["column"]) for e in errors} == {(1, "mobile"), (1, "wechat"), (1, "timezone")}
    dup = csv_file(tmp_path, "loan_id,paid_on,amount,amount\n")
    assert rejected(container, "payments", dup)[0]["reason"] == "column appears twice in the header"


def test_optional_columns_may_be_left_out_and_excel_trailing_commas_are_fine(tmp_path, container):
    path = csv_file(tmp_path, "borrower_id,name,phone,jurisdiction,timezone,,\n"
                    "B1,王一,13800001001,CN,Asia/Shanghai,,\n"
                    "B2,\"Smith, Jane\",2125550123,US,America/Chicago\n"
                    ",,,,,,\n")
    assert run(container, "borrowers", path)["rows"] == 2
    with container.uow(write=False) as s:
        languages = {ext: lang for ext, lang in s.execute(select(Borrower.ext_id, Borrower.language))}
        assert languages == {"B1": "zh-CN", "B2": "en-US"}
        jane = s.scalars(select(Borrower.name_enc).where(Borrower.ext_id == "B2")).one()
    assert container.cipher.decrypt(jane) == "Smith, Jane"


def test_wrong_field_count_and_field_rules(tmp_path, container):
    import_samples(container, upto="loans")
    short = csv_file(tmp_path, "loan_id,paid_on,amount\nL0001,2026-01-01\nL0001,2026-01-01,5,6\n"
                     "L0001,2026-01-01,-5\n")
    assert [(e["row"], e["column"]) for e in rejected(container, "payments", short)] == [
        (2, "amount"), (3, "(extra field 4)"), (4, "amount")]
    loans = csv_file(tmp_path, "loan_id,borrower_id,lender_type,principal,currency,annual_rate,upfront_fees,"
                     "disbursed_on,lpr_at_signing\n"
                     "L1,B0001,private,1000,CNY,12,0,2026-01-01,\n"
                     "L2,B0001,licensed_institution,1000,RMB,1e1,1000,2027-01-01,\n")
    errors = rejected(container, "loans", loans)
    assert [(e["row"], e["column"]) for e in errors] == [
        (2, "lpr_at_signing"), (3, "annual_rate"), (3, "currency"), (3, "disbursed_on"), (3, "upfront_fees")]
    pays = csv_file(tmp_path, "loan_id,paid_on,amount\nL0002,2025-11-01,100\nL0002,2026-01-01,0\n")
    assert [(e["row"], e["column"]) for e in rejected(container, "payments", pays)] == [
        (2, "paid_on"), (3, "amount")]
    consents = csv_file(tmp_path, "borrower_id,kind,form,given_at,withdrawn_at\n"
                        "B0001,third_party_contact,separate,2026-03-01,2026-02-01\n"
                        "B0001,third_party_contact,oral,2026-03-01T10:00:00,\n"
                        "B0001,location,separate,2099-01-01,\n")
    errors = rejected(container, "consents", consents)
    assert [(e["row"], e["column"]) for e in errors] == [
        (2, "withdrawn_at"), (3, "form"), (3, "given_at"), (4, "given_at"), (4, "kind")]


def test_empty_and_header_only_files(tmp_path, container):
    with pytest.raises(BadInput, match="empty"):
        run(container, "payments", csv_file(tmp_path, ""))
    assert run(container, "payments", csv_file(tmp_path, "loan_id,paid_on,amount\n"))["rows"] == 0
    with pytest.raises(BadInput, match="no such file"):
        run(container, "payments", tmp_path / "missing.csv")
    with pytest.raises(BadInput, match="unknown kind"):
        run(container, "cases", DATA / "loans.csv")


def test_progress_is_reported_for_validation_and_insertion(container):
    calls: list[tuple[str, int]] = []
    advanced: dict[str, int] = {}

    def progress(description: str, total: int):
        calls.append((description, total))
        return lambda n: advanced.__setitem__(description, advanced.get(description, 0) + n)

    import_csv(container, kind="borrowers", path=DATA / "borrowers.csv", tenant_code="t", progress=progress)
    assert calls == [("validating borrowers", 8), ("importing borrowers", 8)]
    assert advanced == {"validating borrowers": 8, "importing borrowers": 8}


@pytest.mark.slow
def test_a_100k_row_file_imports_whole(tmp_path, container, database):
    # Speed is measured in bench/, not asserted here; this checks a large file lands complete.
    import_samples(container, upto="loans")
    lines = ["loan_id,seq,due_date,principal_due,interest_due,fee_due"]
    lines += [f"L000{1 + i % 8},{100 + i},2027-{1 + i % 12:02d}-15,{i % 5000}.{i % 100:02d},1.50,0"
              for i in range(100_000)]
    path = tmp_path / "big.csv"
    path.write_text("\n".join(lines) + "\n")
    assert run(container, "installments", path)["rows"] == 100_000
    assert count(container, Installment) == 100_000


def test_sample_files_are_plain_utf8_with_chinese_names():
    for kind in (*KINDS, "borrowers_bad_row"):
        raw = (DATA / f"{kind}.csv").read_bytes()
        assert not raw.startswith(b"\xef\xbb\xbf") and raw.decode("utf-8").count("\n") >= 4
    assert "王建国" in (DATA / "borrowers.csv").read_text("utf-8")
