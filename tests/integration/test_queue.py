"""The work queue: strategy cadence, local times, the guard's pre-check, assignment and recall."""

from __future__ import annotations

import copy
import datetime as dt
import random

import pytest
from sqlalchemy import select, text, update
from test_daily_seed import NOW, D, random_portfolio, seed, simple_loan, tenant

from collectguard.adapters.db.models import Borrower, Case, Consent, Contact, Loan, User
from collectguard.adapters.db.models_ledger import WorkItem as WI
from collectguard.domain.event import Decision, Violation
from collectguard.errors import BadInput
from collectguard.rules import Guard
from collectguard.services import queue
from collectguard.services.daily import daily_run
from collectguard.services.outcomes import dispute_open, ptp_create
from collectguard.services.strategies import (
    opt_out_offered,
    strategy_check,
    strategy_default,
    strategy_parse,
    strategy_save,
)

needs_cn_pack = pytest.mark.skipif(
    "CN" not in Guard.default().packs, reason="the CN rule pack is not there yet"
)


def _items(c, day=D):
    with c.uow(write=False) as s:
        rows = s.execute(
            select(
                Case.loan_id,
                WI.step,
                WI.local_time,
                WI.recipient_key,
                WI.planned_at,
                WI.assignee_user_id,
                WI.agency_tenant_id,
                WI.status,
            )
            .join(Case, Case.id == WI.case_id)
            .where(WI.as_of == day)
        ).all()
    return rows


@needs_cn_pack
def test_actions_follow_the_strategy_cadence(container):
    ids = seed(
        container, [simple_loan(overdue_days=d, borrower=n) for n, d in enumerate((1, 2, 3, 8, 31, 91))]
    )
    out = daily_run(container, as_of=D)
    got = {(r.loan_id, r.step, r.local_time) for r in _items(container)}
    assert got == {
        (ids[0], "M1.sms", "10:00"),
        (ids[1], "M1.push", "12:30"),
        (ids[2], "M1.call", "14:00"),
        (ids[4], "M2.sms", "10:00"),
        (ids[5], "M4.letter", "09:00"),
    }
    assert out["queue"] == 5 and out["queue_denied"] == {}


@needs_cn_pack
def test_planned_time_is_local_to_the_borrower(container):
    seed(container, [simple_loan(overdue_days=1)], timezone="Europe/Berlin")
    daily_run(container, as_of=D)
    (item,) = _items(container)
    assert item.local_time == "10:00"
    assert item.planned_at.replace(tzinfo=dt.UTC) == dt.datetime(2026, 4, 7, 8, 0, tzinfo=dt.UTC)  # CEST


@needs_cn_pack
def test_an_unknown_time_zone_plans_nothing(container):
    seed(container, [simple_loan(overdue_days=1)], timezone="Mars/Olympus")
    out = daily_run(container, as_of=D)
    assert out["queue"] == 0 and out["queue_denied"] == {"queue.bad_timezone": 1}


@needs_cn_pack
def test_agreed_hours_keep_calls_out_of_the_queue(container):
    ids = seed(container, [simple_loan(overdue_days=3), simple_loan(overdue_days=1, borrower=0)])
    with container.uow() as s:
        b = s.get(Borrower, s.get(Loan, ids[0]).borrower_id)
        s.add(
            Consent(
                tenant_id=b.tenant_id,
                borrower_id=b.id,
                kind="agreed_hours",
                form="separate",
                detail={"hours": "09:00-12:00"},
                given_at=NOW,
            )
        )
    out = daily_run(container, as_of=D)
    assert {(r.loan_id, r.step) for r in _items(container)} == {(ids[1], "M1.sms")}  # 10:00 is inside
    assert out["queue_denied"] == {"cn.quiet_hours": 1}  # the 14:00 call is not


@needs_cn_pack
def test_a_third_party_only_when_the_borrower_is_unreachable(container):
    ids = seed(container, [simple_loan(overdue_days=70)])  # M3 day 10: relay via the emergency contact
    with container.uow() as s:
        b = s.scalars(select(Borrower)).one()
        s.add(
            Contact(
                tenant_id=b.tenant_id,
                borrower_id=b.id,
                ext_id="C1",
                name_enc=b"x",
                phone_enc=b"x",
                phone_hmac="c1",
                relation="emergency_contact",
                source="borrower_designated",
                designated_by_borrower=True,
                created_at=NOW,
            )
        )
    out = daily_run(container, as_of=D)
    assert [r.step for r in _items(container)] == []
    assert any(rule.startswith("cn.third_party") for rule in out["queue_denied"])
    with container.uow() as s:  # 失联: deceased
        s.execute(update(Borrower).values(status="deceased"))
    daily_run(container, as_of=D, force=True)
    assert {(r.loan_id, r.step, r.recipient_key[:8]) for r in _items(container)} == {
        (ids[0], "M3.relay", "contact:")
    }


@needs_cn_pack
def test_caps_count_the_actions_planned_the_same_day(container):
    seed(container, [simple_loan(overdue_days=3, borrower=0) for _ in range(5)])  # five calls at 14:00
    out = daily_run(container, as_of=D)
    assert len(_items(container)) == 3  # at most 3 connected calls a day per debtor (CN)
    assert out["queue_denied"] == {"cn.connected_calls_cap": 2}


@needs_cn_pack
def test_an_agency_needs_a_contract_and_the_borrowers_notice(container):
    seed(container, [simple_loan(overdue_days=91)])
    with container.uow() as s:
        lender = tenant(s)
        agency = tenant(s, "agency-1", kind="agency", name="催收机构")
        queue.agency_contract_set(
            s,
            tenant_id=lender.id,
            agency_tenant_id=agency.id,
            capacity=10,
            processing_contract=True,
            actor="test",
            now=NOW,
        )
    out = daily_run(container, as_of=D)
    assert out["assigned"] == {"agencies": 1, "collectors": 0}
    assert _items(container) == [] and out["queue_denied"] == {"cn.outsourcing.notice": 1}
    with container.uow() as s:
        case = s.scalars(select(Case)).one()
        queue.case_outsourcing_notified(s, tenant_id=lender.id, case_id=case.id, on=D, actor="test", now=NOW)
    d2 = D + dt.timedelta(days=1)  # M4 day 2: a call, now by a notified, contracted agency
    assert daily_run(container, as_of=d2)["queue"] == 1
    (item,) = _items(container, d2)
    assert (item.step, item.agency_tenant_id) == ("M4.call", agency.id)
    with container.uow() as s:
        got = queue.queue_list(s, tenant_id=agency.id, agency_tenant_id=agency.id, as_of=d2)
        assert [w["step"] for w in got] == ["M4.call"]
        recalled = queue.case_recall(
            s, tenant_id=lender.id, agency_tenant_id=agency.id, on=d2, actor="t", now=NOW
        )
    assert recalled["recalled"] == 1
    assert [r.status for r in _items(container, d2)] == ["cancelled"]
    with container.uow(write=False) as s:
        assert s.scalars(select(Case)).one().agency_tenant_id is None


class NoCalls:
    """A guard that denies every call and allows the rest: what it denies must never be queued."""

    def check(self, event):
        if event.channel == "call":
            return Decision(
                verdict="deny",
                pack="TEST",
                pack_version="1",
                violations=(Violation(rule="test.no_calls", citations=(), message_zh="x", message_en="x"),),
            )
        return Decision(verdict="allow", pack="TEST", pack_version="1")


@needs_cn_pack
def test_what_the_guard_denies_never_reaches_the_queue(container):
    seed(container, random_portfolio(random.Random(11), 300))
    allowed = daily_run(container, as_of=D)
    calls = sum(1 for r in _items(container) if ".call" in r.step)
    assert calls > 0
    with container.uow() as s:
        s.execute(text("DELETE FROM work_item"))
    out = daily_run(container, as_of=D, force=True, guard=NoCalls())
    assert not any(".call" in r.step for r in _items(container))
    assert out["queue_denied"] == {"test.no_calls": calls}
    assert out["queue"] + calls == allowed["queue"] + sum(allowed["queue_denied"].values())


def test_paused_and_promised_cases_get_no_actions(container):
    ids = seed(container, [simple_loan(overdue_days=2, borrower=n) for n in range(3)])  # M1 day 2: a push
    daily_run(container, as_of=D - dt.timedelta(days=1))
    with container.uow() as s:
        cases = {c.loan_id: c for c in s.scalars(select(Case))}
        dispute_open(
            s,
            tenant_id=cases[ids[0]].tenant_id,
            case_id=cases[ids[0]].id,
            reason="不是我借的",
            on=D,
            actor="t",
            now=NOW,
        )
        ptp_create(
            s,
            tenant_id=cases[ids[1]].tenant_id,
            case_id=cases[ids[1]].id,
            promised_on=D,
            amount="100",
            due_date=D + dt.timedelta(days=3),
            actor="t",
            now=NOW,
        )
    daily_run(container, as_of=D, guard=NoCalls())
    assert {r.loan_id for r in _items(container)} == {ids[2]}


def test_cases_go_to_collectors_by_capacity_worst_first(container):
    ids = seed(container, [simple_loan(overdue_days=d, borrower=n) for n, d in enumerate((2, 9, 5, 20, 1))])
    with container.uow() as s:
        t = tenant(s)
        users = []
        for name, cap in (("a", 2), ("b", 1)):
            u = User(tenant_id=t.id, username=name, password_hash="x", role="collector", created_at=NOW)
            s.add(u)
            s.flush()
            queue.collector_capacity_set(s, tenant_id=t.id, user_id=u.id, capacity=cap, actor="t", now=NOW)
            users.append(u.id)
    out = daily_run(container, as_of=D, guard=NoCalls())
    assert out["assigned"] == {"agencies": 0, "collectors": 3}
    with container.uow(write=False) as s:
        held = {c.loan_id: c.assignee_user_id for c in s.scalars(select(Case))}
    # DPD 20, 9, 5 are served first; holders take turns: a, b, a.
    assert held == {ids[3]: users[0], ids[1]: users[1], ids[2]: users[0], ids[0]: None, ids[4]: None}
    assert {r.loan_id: r.assignee_user_id for r in _items(container)}[ids[1]] == users[1]  # day 9: a push


@needs_cn_pack
def test_the_lint_refuses_a_threatening_template():
    body = copy.deepcopy(strategy_default("CN").model_dump(mode="json"))
    body["templates"]["reminder"]["zh"] = "{name_masked}，再不还钱就爆你通讯录，让你全家都知道！"
    with pytest.raises(BadInput) as err:
        strategy_check(strategy_parse(body))
    assert err.value.field == "templates.reminder.zh"


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("buckets", "M1", 0, "at"), "22:00", "buckets.M1.0.at"),
        (("buckets", "M1", 0, "at"), "07:59", "buckets.M1.0.at"),
        (("templates", "reminder", "zh"), "{name} 请还款", None),
        (("buckets", "M1", 0, "days"), [0], "buckets.M1.0.days"),
    ],
)
def test_a_malformed_strategy_is_refused(path, value, field):
    body = (
        copy.deepcopy(strategy_default("CN").model_dump(mode="json"))
        if "CN" in Guard.default().packs
        else {
            "jurisdiction": "CN",
            "version": "t",
            "buckets": {
                "M1": [{"id": "sms", "channel": "sms", "days": [1], "at": "10:00", "template": "reminder"}]
            },
            "templates": {"reminder": {"zh": "请还款", "en": "Please pay"}},
        }
    )
    node = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(BadInput) as err:
        strategy_parse(body)
    if field:
        assert err.value.field == field


@needs_cn_pack
def test_a_saved_strategy_replaces_the_default(container):
    ids = seed(container, [simple_loan(overdue_days=1), simple_loan(overdue_days=3, borrower=1)])
    body = {
        "jurisdiction": "CN",
        "version": "mine-1",
        "buckets": {"M1": [{"id": "only", "channel": "sms", "days": [3], "at": "09:15", "template": "t"}]},
        "templates": {
            "t": {
                "zh": "【{app}】{name_masked}您好，本期{amount}元已到期，请还款。",
                "en": "Please pay {amount}.",
            }
        },
    }
    with container.uow() as s:
        strategy_save(s, tenant_id=tenant(s).id, body=body, actor="t", now=NOW)
    daily_run(container, as_of=D)
    assert {(r.loan_id, r.step, r.local_time) for r in _items(container)} == {(ids[1], "M1.only", "09:15")}


@needs_cn_pack
def test_stops_keep_actions_out_of_the_queue(container):
    from collectguard.adapters.db.models_ops import CollectionStop

    ids = seed(container, [simple_loan(overdue_days=2, borrower=n) for n in range(3)])  # M1 day 2: a push each
    daily_run(container, as_of=D - dt.timedelta(days=1), guard=NoCalls())
    with container.uow() as s:
        cases = {c.loan_id: c for c in s.scalars(select(Case))}
        number = s.get(Borrower, cases[ids[1]].borrower_id).phone_hmac
        for lid, scope, key in ((ids[0], "case", None), (ids[1], "number", number)):
            c = cases[lid]
            s.add(CollectionStop(tenant_id=c.tenant_id, case_id=c.id, borrower_id=c.borrower_id, scope=scope,
                                 contact_key=key, reason="complaint", starts_on=D, created_by="t", created_at=NOW))
    out = daily_run(container, as_of=D)
    assert {r.loan_id for r in _items(container)} == {ids[2]}
    # The case stop filters its case out; the stopped number is judged as a disputed debt.
    assert out["queue_denied"] == {"cn.debt.disputed": 1}


needs_us_pack = pytest.mark.skipif("US" not in Guard.default().packs, reason="the US rule pack is not there yet")


def _us_strategy(body_en: str, body_zh: str) -> dict:
    return {
        "jurisdiction": "US",
        "version": "opt-out-1",
        "buckets": {"M1": [{"id": "email", "channel": "email", "days": [1], "at": "10:00", "template": "t"},
                           {"id": "letter", "channel": "letter", "days": [1], "at": "09:00", "template": "t"}]},
        "templates": {"t": {"en": body_en, "zh": body_zh}},
    }


@needs_us_pack
@pytest.mark.parametrize("language", ["en-US", "zh-CN"])
def test_us_electronic_actions_carry_the_templates_opt_out(container, language):
    # Reg F 1006.6(e): the default US templates say "Reply STOP" / 退订, so the e-mail of M1 day 1 is planned.
    ids = seed(container, [simple_loan(overdue_days=1)], jurisdiction="US", timezone="America/New_York",
               language=language)
    out = daily_run(container, as_of=D)
    assert {(r.loan_id, r.step) for r in _items(container)} == {(ids[0], "M1.email")}
    assert "us.electronic_opt_out" not in out["queue_denied"]


@needs_us_pack
def test_us_electronic_actions_without_an_opt_out_are_denied(container):
    ids = seed(container, [simple_loan(overdue_days=1)], jurisdiction="US", timezone="America/New_York",
               language="en-US")
    body = _us_strategy("This is a communication from a debt collector for {app}: {amount} was due on {due_date}.",
                        "这是{app}的债务催收方发出的信息：{amount}已于{due_date}到期。")
    with container.uow() as s:
        strategy_save(s, tenant_id=tenant(s).id, body=body, actor="t", now=NOW)
    out = daily_run(container, as_of=D)
    # The letter is not electronic: planned; the e-mail lacks the opt-out: denied for that reason.
    assert {(r.loan_id, r.step) for r in _items(container)} == {(ids[0], "M1.letter")}
    assert out["queue_denied"] == {"us.electronic_opt_out": 1}


@pytest.mark.parametrize(
    ("message", "offered"),
    [
        ("Reply STOP to opt out of electronic messages.", True),
        ("To stop e-mails, click Unsubscribe.", True),
        ('Text "STOP" to end these texts.', True),
        ("回复STOP可退订电子信息。", True),
        ("请于今日还款，回复TD拒收。", True),
        ("Please pay {amount} today.", False),
        ("Stop ignoring us.", False),
        ("请尽快还款。", False),
    ],
)
def test_what_counts_as_an_opt_out(message, offered):
    assert opt_out_offered(message) is offered
