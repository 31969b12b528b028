"""Message templates: versions, the guard's lint, compliance approval (maker-checker), rendering only what
is approved, and legal wording only on a case with a recorded legal action (both backends)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from test_allocation import NOW, D, borrower, case, lender, principal

from collectguard.adapters.db.models import AuditRecord
from collectguard.errors import BadInput, Conflict, Forbidden, NotFound
from collectguard.services.templates import (
    legal_action_record,
    legal_action_record_as,
    legal_wording,
    template_act_as,
    template_create,
    template_lint,
    template_render_approved,
    template_render_as,
    template_review,
    templates_list_as,
)

REMINDER = "{name_masked}您好，您在{app}的借款{amount}元已逾期{dpd}天，请通过App还款，还款码{pay_code}。"
VALUES = {"name_masked": "张*", "app": "示例金融", "amount": "860.00", "dpd": "12", "pay_code": "AB23CD45"}
LAWSUIT = "{name_masked}您好，您的借款已逾期，我们已依法向{court}提起诉讼，案号{case_number}。"


@pytest.fixture
def w(container):
    with container.uow() as s:
        t = lender(s)
        row = case(s, borrower(s, container, t, "B1"), "L1")
        return {"t": t.id, "case": row.id, "lead": principal(t, "team_lead", token_id=31),
                "officer": principal(t, "compliance_officer", token_id=32),
                "collector": principal(t, "collector", token_id=33)}


def create(c, w, body=REMINDER, author="user:1", **kw):
    kw.setdefault("code", "m1_sms")
    kw.setdefault("language", "zh")
    with c.uow() as s:
        return template_create(s, tenant_id=w["t"], body=body, actor=author, now=NOW, **kw).id


def lint(c, w, tid):
    with c.uow() as s:
        return template_lint(s, tenant_id=w["t"], template_id=tid, actor="user:1", now=NOW)


def review(c, w, tid, reviewer="user:2", approve=True):
    with c.uow() as s:
        return template_review(s, tenant_id=w["t"], template_id=tid, approve=approve, note="", reviewer=reviewer,
                               now=NOW)


def render(c, tid, values=VALUES, **kw):
    with c.uow(write=False) as s:
        return template_render_approved(s, template_id=tid, variables=values, **kw)


def approved(c, w, body=REMINDER, **kw):
    tid = create(c, w, body, **kw)
    assert lint(c, w, tid).status == "linted"
    assert review(c, w, tid).status == "approved"
    return tid


def test_draft_lint_approve_render(container, w):
    tid = create(container, w)
    with pytest.raises(Conflict):  # only approved templates can be sent
        render(container, tid)
    with pytest.raises(Conflict):  # only a linted version is reviewed
        review(container, w, tid)
    row = lint(container, w, tid)
    assert (row.status, row.lint, row.legal_wording) == ("linted", [], False)
    assert row.variables == ["amount", "app", "dpd", "name_masked", "pay_code"]
    with pytest.raises(Forbidden, match="maker-checker"):
        review(container, w, tid, reviewer="user:1")
    review(container, w, tid)
    assert render(container, tid) == "张*您好，您在示例金融的借款860.00元已逾期12天，请通过App还款，还款码AB23CD45。"
    with container.uow(write=False) as s:
        actions = s.scalars(select(AuditRecord.action).where(AuditRecord.subject == f"template:{tid}")).all()
    assert actions == ["template.create", "template.lint", "template.approved"]


@pytest.mark.parametrize("body, category", [
    ("{name_masked}，再不还钱你给我等着。", "threat"),
    ("{name_masked}你这个老赖，马上还钱。", "shaming"),
    ("{name_masked}，不还钱就让你坐牢。", "false_legal_claim"),
])
def test_the_lint_fails_what_the_guard_would_deny_and_it_cannot_be_approved(container, w, body, category):
    tid = create(container, w, body)
    row = lint(container, w, tid)
    assert row.status == "lint_failed" and category in {f["category"] for f in row.lint}
    with pytest.raises(Conflict):
        review(container, w, tid)


def test_third_party_templates_are_linted_as_such(container, w):
    tid = create(container, w, "您好，请转告{name_masked}尽快归还借款{amount}元。", audience="third_party")
    assert "debt_disclosure" in {f["category"] for f in lint(container, w, tid).lint}


def test_legal_wording_renders_only_on_a_case_with_a_legal_action(container, w):
    assert legal_wording("我们将依法起訴", "zh") == ["起诉"]  # Traditional is normalised
    tid = approved(container, w, LAWSUIT, code="legal")
    values = {"name_masked": "张*", "court": "某某区人民法院", "case_number": "（2026）某0101民初1号"}
    with pytest.raises(Forbidden):
        render(container, tid, values)
    with pytest.raises(Forbidden):
        render(container, tid, values, case_id=w["case"])
    with container.uow() as s:
        legal_action_record(s, tenant_id=w["t"], case_id=w["case"], kind="lawsuit", filed_on=D, court="某某区人民法院",
                            case_number="（2026）某0101民初1号", actor="user:3", now=NOW)
    assert "提起诉讼" in render(container, tid, values, case_id=w["case"])


def test_a_new_version_supersedes_the_approved_one(container, w):
    v1 = approved(container, w)
    v2 = approved(container, w, REMINDER.replace("您好", "你好"))
    with container.uow(write=False) as s:
        from collectguard.adapters.db.models_ops import MessageTemplate
        assert (s.get(MessageTemplate, v1).status, s.get(MessageTemplate, v2).version) == ("superseded", 2)
    with pytest.raises(Conflict):
        render(container, v1)
    assert render(container, v2).startswith("张*你好")


@pytest.mark.parametrize("body, field", [
    ("{name}您好", "body"), ("{phone}", "body"), ("余额{amount", "body"), ("", "body"),
])
def test_only_known_variables_and_never_clear_personal_data(container, w, body, field):
    with pytest.raises(BadInput) as exc:
        create(container, w, body)
    assert exc.value.field == field


def test_rendering_checks_the_variables_and_lints_the_result(container, w):
    tid = approved(container, w)
    with pytest.raises(BadInput):
        render(container, tid, {**VALUES, "extra": "x"})
    with pytest.raises(BadInput):
        render(container, tid, {k: v for k, v in VALUES.items() if k != "dpd"})
    with pytest.raises(BadInput) as exc:  # a value smuggling in what the template would not pass
        render(container, tid, {**VALUES, "name_masked": "老赖"})
    assert exc.value.detail["findings"][0]["category"] == "shaming"
    with pytest.raises(NotFound):
        render(container, tid, tenant_id=w["t"] + 1000)


def test_who_may_write_review_render_and_record_legal_actions(container, w):
    out = template_act_as(container, principal=w["lead"], action="create", code="c", language="en",
                          body="Dear {name_masked}, {amount} is due on {due_date}. Please pay in the {app} app.")
    with pytest.raises(Forbidden):
        template_act_as(container, principal=w["collector"], action="lint", template_id=out["id"])
    assert template_act_as(container, principal=w["lead"], action="lint", template_id=out["id"])["status"] == "linted"
    with pytest.raises(Forbidden):  # approval is compliance's
        template_act_as(container, principal=w["lead"], action="review", template_id=out["id"], approve=True, note="")
    assert template_act_as(container, principal=w["officer"], action="review", template_id=out["id"], approve=True,
                           note="")["status"] == "approved"
    values = {"name_masked": "Z***", "amount": "86.00", "due_date": "2026-05-01", "app": "Example"}
    assert template_render_as(container, principal=w["collector"], template_id=out["id"], variables=values,
                              case_id=w["case"])["text"].startswith("Dear Z***")
    assert [t["id"] for t in templates_list_as(container, principal=w["collector"])] == [out["id"]]
    with pytest.raises(Forbidden):
        legal_action_record_as(container, principal=w["lead"], case_id=w["case"], kind="lawsuit", filed_on=D,
                               court="X", case_number="1")
    with pytest.raises(BadInput):
        legal_action_record_as(container, principal=w["officer"], case_id=w["case"], kind="lawsuit",
                               filed_on=D + dt.timedelta(days=9), court="X", case_number="1")
