"""Stops (停催) and complaint tickets: windows, numbers, the guard denying while a stop is active, the
queue filter, complaint risk tags, CSV import, permissions (both backends)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Date, bindparam, func, select, text
from test_attempts_seed import NOW, seed

from collectguard.adapters.db.models import AuditRecord, Case, Complaint, Contact, Loan
from collectguard.adapters.db.models_ledger import WorkItem
from collectguard.adapters.db.models_ops import CollectionStop
from collectguard.errors import BadInput, Conflict, Denied, Forbidden, ImportRejected, NotFound
from collectguard.services import attempts, facts
from collectguard.services.attempts import contact_attempt_request
from collectguard.services.authz import Principal
from collectguard.services.complaints import (
    complaint_file,
    complaint_file_as,
    complaint_resolve,
    complaint_risk,
    complaints_import_csv,
    complaints_list_as,
)
from collectguard.services.stops import (
    QUEUE_STOP_FILTER_SQL,
    stop_active,
    stop_apply,
    stop_create,
    stop_create_as,
    stop_lift,
    stop_lift_as,
)

D = dt.date(2026, 4, 7)
BJ = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture
def w(container):
    return seed(container)


@pytest.fixture
def guarded(monkeypatch):
    """The one-line integration the lead adds to ``facts.stored_event``, applied here by wrapping it."""
    original = facts.stored_event

    def with_stops(s, *, subject, channel, **kw):
        event = original(s, subject=subject, channel=channel, **kw)
        key = facts.recipient_key_for(channel, subject.borrower, subject.contact, subject.role)
        return stop_apply(s, event, case_id=subject.case.id if subject.case else None,
                          borrower_id=subject.borrower.id, contact_key=key)

    monkeypatch.setattr(attempts, "stored_event", with_stops)


def stop(c, w, **kw):
    kw.setdefault("starts_on", D)
    kw.setdefault("reason", "complaint")
    with c.uow() as s:
        return stop_create(s, cipher=c.cipher, tenant_id=w["lender"], case_id=w["case"], actor="user:1", now=NOW, **kw)


def active(c, w, day, key=None):
    with c.uow(write=False) as s:
        return stop_active(s, case_id=w["case"], contact_key=key, at=day)


def call(c, w, **kw):
    kw.setdefault("case_id", w["case"])
    if "contact_id" not in kw:
        kw.setdefault("role", "borrower")
    return contact_attempt_request(c, principal=w["collector"], channel="call",
                                   time=dt.datetime(2026, 4, 7, 10, 5, tzinfo=BJ), **kw)


def test_a_case_stop_is_active_inside_its_window_only_and_until_lifted(container, w):
    row = stop(container, w, starts_on=D, ends_on=D + dt.timedelta(days=9))
    assert active(container, w, D - dt.timedelta(days=1)) is None
    assert active(container, w, D).id == row.id and active(container, w, D + dt.timedelta(days=9)).id == row.id
    assert active(container, w, D + dt.timedelta(days=10)) is None
    # An aware time is judged on the borrower's local date: 23:30 UTC on the 6th is the 7th in Beijing.
    assert active(container, w, dt.datetime(2026, 4, 6, 23, 30, tzinfo=dt.UTC)).id == row.id
    with container.uow() as s:
        stop_lift(s, tenant_id=w["lender"], stop_id=row.id, actor="user:2", now=NOW)
        with pytest.raises(Conflict):
            stop_lift(s, tenant_id=w["lender"], stop_id=row.id, actor="user:2", now=NOW)
    assert active(container, w, D) is None
    with container.uow(write=False) as s:
        actions = s.scalars(select(AuditRecord.action).where(AuditRecord.subject == f"case:{w['case']}")).all()
        assert {"stop.create", "stop.lift"} <= set(actions)


def test_a_number_stop_matches_that_number_only(container, w):
    with container.uow(write=False) as s:
        ec, gu = s.get(Contact, w["emergency"]), s.get(Contact, w["guarantor"])
        ec_key, gu_key = ec.phone_hmac, gu.phone_hmac
    stop(container, w, scope="number", contact_id=w["emergency"], reason="dispute")
    assert active(container, w, D) is None  # not a case stop
    assert active(container, w, D, key=ec_key).contact_id == w["emergency"]
    assert active(container, w, D, key=gu_key) is None
    stop(container, w, scope="number", phone="13700137000")  # the guarantor's number, written nationally
    assert active(container, w, D, key=gu_key).contact_id is None


@pytest.mark.parametrize("kw, field", [
    ({"reason": "bored"}, "reason"), ({"scope": "all"}, "scope"), ({"phone": "+8613700137000"}, "scope"),
    ({"scope": "number", "phone": "12345"}, "phone"), ({"ends_on": D - dt.timedelta(days=1)}, "ends_on"),
])
def test_bad_stops_are_refused_naming_the_field(container, w, kw, field):
    with pytest.raises(BadInput) as exc:
        stop(container, w, **kw)
    assert exc.value.field == field


def test_another_tenants_case_or_contact_is_not_found(container, w):
    with pytest.raises(NotFound):
        stop(container, w, scope="number", contact_id=w["contact2"])
    with container.uow() as s, pytest.raises(NotFound):
        stop_create(s, tenant_id=w["lender"], case_id=w["case2"], reason="fraud", starts_on=D, actor="x", now=NOW)


def test_the_guard_denies_while_a_case_stop_is_active(container, w, guarded):
    assert call(container, w)["decision"]["verdict"] == "allow"
    row = stop(container, w, reason="litigation")
    with pytest.raises(Denied) as exc:
        call(container, w)
    assert "cn.debt.disputed" in {v["rule"] for v in exc.value.decision["violations"]}
    with container.uow() as s:
        stop_lift(s, tenant_id=w["lender"], stop_id=row.id, actor="user:2", now=NOW)
    assert call(container, w)["decision"]["verdict"] == "allow"


def test_a_number_stop_denies_that_number_and_leaves_the_others(container, w, guarded):
    stop(container, w, scope="number", reason="complaint")  # the borrower's own number
    with pytest.raises(Denied):
        call(container, w)
    assert call(container, w, contact_id=w["guarantor"])["decision"]["verdict"] == "allow"


def test_creating_a_stop_cancels_the_planned_work_in_its_window(container, w):
    with container.uow() as s:
        for day, key in ((D, "borrower"), (D + dt.timedelta(days=1), f"contact:{w['guarantor']}"),
                         (D + dt.timedelta(days=5), "borrower")):
            s.add(WorkItem(as_of=day, tenant_id=w["lender"], case_id=w["case"], loan_id=w["loan"],
                           borrower_id=w["borrower"], recipient_key=key, step=f"s{day.day}{key[:3]}", channel="sms",
                           recipient_role="borrower", purpose="collect", template="t", language="zh",
                           local_time="10:00", timezone="Asia/Shanghai", planned_at=NOW))
    stop(container, w, scope="number", ends_on=D + dt.timedelta(days=2))
    with container.uow(write=False) as s:
        statuses = dict(s.execute(select(WorkItem.step, WorkItem.status)).all())
    assert statuses == {"s7bor": "cancelled", "s8con": "planned", "s12bor": "planned"}


def test_the_queue_filter_is_valid_sql_that_drops_stopped_cases(container, w):
    stop(container, w, ends_on=D)
    sql = text(f"SELECT c.id FROM collection_case c, (SELECT :d AS d) p WHERE {QUEUE_STOP_FILTER_SQL} "
               "ORDER BY c.id").bindparams(bindparam("d", type_=Date))
    with container.uow(write=False) as s:
        assert list(s.scalars(sql, {"d": D})) == [w["case2"]]
        assert list(s.scalars(sql, {"d": D + dt.timedelta(days=1)})) == [w["case"], w["case2"]]


def test_only_staff_who_may_stop_collection_can_and_only_compliance_lifts(container, w):
    lead = Principal(tenant_id=w["lender"], tenant_code="lender-a", role="team_lead", token_id=5)
    with pytest.raises(Forbidden):
        stop_create_as(container, principal=w["collector"], case_id=w["case"], on=D, reason="fraud")
    other_lead = Principal(tenant_id=w["other"], tenant_code="lender-b", role="team_lead", token_id=6)
    with pytest.raises(NotFound):  # another lender's case
        stop_create_as(container, principal=other_lead, case_id=w["case"], on=D, reason="fraud")
    out = stop_create_as(container, principal=lead, case_id=w["case"], on=D, reason="fraud")
    assert out["active"] and out["starts_on"] == D.isoformat()
    with pytest.raises(Forbidden):
        stop_lift_as(container, principal=lead, stop_id=out["id"])
    assert stop_lift_as(container, principal=w["officer"], stop_id=out["id"])["active"] is False


# ---------------------------------------------------------------- complaints

def file(c, w, **kw):
    kw.setdefault("category", "harassment")
    kw.setdefault("text", "催收员一天打了十几次电话")
    with c.uow() as s:
        return complaint_file(s, tenant_id=w["lender"], case_id=w["case"], on=D, actor="user:1", now=NOW, **kw)


@pytest.mark.parametrize("category, channel, risk", [
    ("harassment", "portal", "high"), ("fees", "phone", "medium"), ("service", "email", "low"),
    ("service", "regulator", "high"),
])
def test_each_complaint_gets_a_risk_tag(container, w, category, channel, risk):
    file(container, w, category=category, channel=channel)
    with container.uow(write=False) as s:
        assert complaint_risk(s, borrower_id=w["borrower"], at=NOW) == risk


def test_the_risk_tag_is_the_highest_of_open_and_recent_complaints(container, w):
    with container.uow(write=False) as s:
        assert complaint_risk(s, borrower_id=w["borrower"], at=NOW) is None
    low = file(container, w, category="service")
    file(container, w, category="fees", received_at=NOW - dt.timedelta(days=200))
    with container.uow(write=False) as s:
        assert complaint_risk(s, borrower_id=w["borrower"], at=NOW) == "medium"  # the old one is still open
    with container.uow() as s:
        old = s.scalar(select(Complaint).where(Complaint.category == "fees"))
        complaint_resolve(s, tenant_id=w["lender"], complaint_id=old.id, resolution="已退费", actor="u", now=NOW)
    with container.uow(write=False) as s:
        assert complaint_risk(s, borrower_id=w["borrower"], at=NOW) == "low"
        assert complaint_risk(s, borrower_id=w["borrower"], at=NOW + dt.timedelta(days=100)) == "low"  # open
    with container.uow() as s:
        complaint_resolve(s, tenant_id=w["lender"], complaint_id=low.id, resolution="已解释", actor="u", now=NOW)
    with container.uow(write=False) as s:
        assert complaint_risk(s, borrower_id=w["borrower"], at=NOW + dt.timedelta(days=100)) is None


def test_filing_with_stop_stops_collection_until_resolved(container, w):
    row = file(container, w, stop=True)
    hit = active(container, w, D)
    assert hit.reason == "complaint" and hit.complaint_id == row.id
    with container.uow() as s:
        complaint_resolve(s, tenant_id=w["lender"], complaint_id=row.id, resolution="已核实并整改", actor="u", now=NOW)
        with pytest.raises(Conflict):
            complaint_resolve(s, tenant_id=w["lender"], complaint_id=row.id, resolution="again", actor="u", now=NOW)
    assert active(container, w, D) is None
    with container.uow(write=False) as s:
        assert s.scalar(select(CollectionStop.lifted_by).where(CollectionStop.complaint_id == row.id)) == "u"


def test_a_borrower_files_from_the_portal_and_sees_only_their_own(container, w):
    zhang = Principal(tenant_id=w["lender"], tenant_code="lender-a", role="borrower", borrower_id=w["borrower"],
                      token_id=8)
    out = complaint_file_as(container, principal=zhang, case_id=w["case"], on=D, category="privacy",
                            text="你们把我的欠款告诉了我同事", stop=True, ext_ref="X")
    assert out["source"] == "portal" and out["risk"] == "high" and out["ext_ref"] is None
    assert active(container, w, D) is None  # a borrower cannot stop collection by filing; compliance decides
    with pytest.raises(NotFound):
        complaint_file_as(container, principal=zhang, case_id=w["case2"], on=D, category="other", text="x")
    file(container, w, category="fees")
    assert complaints_list_as(container, principal=zhang)["total"] == 2
    assert complaints_list_as(container, principal=w["officer"], status="open")["total"] == 2
    with pytest.raises(Forbidden):
        complaints_list_as(container, principal=w["collector"])


CSV = "\ufeffcomplaint_ref,loan_id,received_at,channel,category,text\n" \
      "R-1,L1,2026-04-06T09:00:00+08:00,regulator,harassment,监管转办：频繁来电\n" \
      "R-2,L1,2026-04-06T10:00:00+08:00,phone,fees,收取了催收费\n"


def test_csv_import_is_all_or_nothing_and_idempotent(container, w):
    with container.uow() as s:
        assert complaints_import_csv(s, tenant_id=w["lender"], text=CSV, actor="u", now=NOW) == {
            "imported": 2, "skipped": 0}
    with container.uow() as s:
        assert complaints_import_csv(s, tenant_id=w["lender"], text=CSV, actor="u", now=NOW) == {
            "imported": 0, "skipped": 2}
        row = s.scalar(select(Complaint).where(Complaint.channel == "regulator"))
        assert row.case_id == w["case"]
    bad = CSV + "R-3,L9,yesterday,fax,rude,\n"
    with container.uow() as s, pytest.raises(ImportRejected) as exc:
        complaints_import_csv(s, tenant_id=w["lender"], text=bad, actor="u", now=NOW)
    assert {(e["row"], e["column"]) for e in exc.value.errors} >= {(4, "loan_id"), (4, "received_at"), (4, "category")}
    with container.uow(write=False) as s:
        assert s.scalar(select(func.count()).select_from(Complaint)) == 2
    with container.uow() as s, pytest.raises(BadInput):
        complaints_import_csv(s, tenant_id=w["lender"], text="a,b\n1,2\n", actor="u", now=NOW)


def test_a_complaint_is_about_a_case_of_the_tenant(container, w):
    with container.uow() as s, pytest.raises(NotFound):
        complaint_file(s, tenant_id=w["lender"], case_id=w["case2"], category="other", text="x", actor="u", now=NOW)
    with pytest.raises(BadInput):
        file(container, w, category="rude")
    file(container, w, ext_ref="T-1")
    with pytest.raises(Conflict):
        file(container, w, ext_ref="T-1")
    with container.uow(write=False) as s:
        assert s.get(Case, w["case"]).status == "open" and s.get(Loan, w["loan"]).debt_status == "valid"
