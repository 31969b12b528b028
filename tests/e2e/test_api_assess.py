"""POST /api/v1/assess and the /self-check page through the real app (TestClient)."""

from __future__ import annotations

import dataclasses
import re

import pytest
from fastapi.testclient import TestClient

from collectguard.api.app import create_app
from conftest import create_database, make_container

PROBLEM = "application/problem+json"
SEED = "我网贷逾期了，他们给我通讯录里的人发短信说我欠钱不还"
EVENT = {"jurisdiction": "CN", "channel": "call", "time": "2026-03-02T22:30:00+08:00",
         "recipient": {"role": "borrower"}}
SHAPE = {"verdict", "findings", "missing_facts", "consequences", "next_steps", "facts"}


@pytest.fixture(scope="module")
def container(tmp_path_factory):
    db = create_database("sqlite", tmp_path_factory)
    yield make_container(db, log_json=False, log_level="WARNING")
    db.close()


@pytest.fixture
def client(container):
    return TestClient(create_app(container))


def limited(container, per_minute: int) -> TestClient:
    settings = container.settings.model_copy(update={"assess_rate_limit_per_minute": per_minute})
    return TestClient(create_app(dataclasses.replace(container, settings=settings)))


# ---- the API -----------------------------------------------------------------------------------------

def test_text_is_public_and_returns_the_assessment(client) -> None:
    resp = client.post("/api/v1/assess", json={"text": SEED})  # no Authorization header
    assert resp.status_code == 200
    a = resp.json()
    assert SHAPE <= set(a) and a["verdict"] == "unlawful" and a["jurisdiction"] == "CN"
    finding = a["findings"][0]
    assert {"rule", "citations", "message_zh", "message_en"} <= set(finding)
    assert {"CN:PIPL:10", "CN:CC:1038"} <= {c for f in a["findings"] for c in f["citations"]}
    assert all({"id", "kind", "citations", "text_zh", "text_en"} <= set(c) for c in a["consequences"])
    assert all({"id", "text_zh", "text_en"} <= set(s) for s in a["next_steps"])


def test_traditional_chinese_and_english(client) -> None:
    zht = client.post("/api/v1/assess", json={"text": "我網貸逾期了，他們給我通迅錄裡的人發簡訊說我欠錢不還！"}).json()
    en = client.post("/api/v1/assess", json={"text": "They called me at 11:30 pm.", "jurisdiction": "CN"}).json()
    assert zht["verdict"] == "unlawful" and en["verdict"] == "unlawful"
    assert en["facts"]["time"].endswith("T23:30:00+08:00")


def test_a_structured_event(client) -> None:
    a = client.post("/api/v1/assess", json=EVENT).json()
    assert a["verdict"] == "unlawful" and a["facts"] == EVENT and a["findings"][0]["rule"] == "cn.quiet_hours"
    third = EVENT | {"time": "2026-03-02T14:00:00+08:00", "purpose": "locate",
                     "recipient": {"role": "emergency_contact", "source": "borrower_designated"}}
    u = client.post("/api/v1/assess", json=third).json()
    assert u["verdict"] == "undetermined"
    assert [m["field"] for m in u["missing_facts"]] == ["history.borrower_unreachable"]
    assert {"question_zh", "question_en"} <= set(u["missing_facts"][0])


@pytest.mark.parametrize(("body", "field"), [
    ({"text": ""}, "text"),
    ({"text": 42}, "text"),
    ({"text": "x" * 5001}, "text"),
    ({"text": SEED, "jurisdiction": "JP"}, "jurisdiction"),
    ({"text": SEED, "lang": "zh"}, "lang"),
    (EVENT | {"recipient": {"role": "neighbour"}}, "recipient.role"),
    (EVENT | {"colour": "red"}, "colour"),
    ({k: v for k, v in EVENT.items() if k != "time"}, "time"),
    (EVENT | {"time": "2026-03-02T22:30:00"}, "time"),
    ([EVENT], "body"),
])
def test_bad_bodies_are_422_naming_the_field(client, body, field) -> None:
    resp = client.post("/api/v1/assess", json=body)
    assert resp.status_code == 422 and resp.headers["content-type"].startswith(PROBLEM)
    assert resp.json()["field"] == field and resp.json()["code"] == "bad_input"


def test_not_json_is_422(client) -> None:
    resp = client.post("/api/v1/assess", content=b"{nope", headers={"content-type": "application/json"})
    assert resp.status_code == 422 and resp.headers["content-type"].startswith(PROBLEM)


def test_the_rate_limit_answers_429(container) -> None:
    client = limited(container, 3)
    statuses = [client.post("/api/v1/assess", json=EVENT).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    resp = client.post("/api/v1/assess", json=EVENT)
    assert resp.headers["content-type"].startswith(PROBLEM) and resp.json()["code"] == "rate_limited"
    assert int(resp.headers["retry-after"]) >= 1


def test_openapi_documents_the_route(client) -> None:
    op = client.get("/openapi.json").json()["paths"]["/api/v1/assess"]["post"]
    assert "security" not in op and "oneOf" in str(op["requestBody"])


# ---- the /self-check page ----------------------------------------------------------------------------

def csrf_from(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_the_page_is_public_and_chinese_by_default(client) -> None:
    resp = client.get("/self-check")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in resp.text and "合法性自查" in resp.text and 'name="who"' in resp.text
    assert 'name="csrf_token"' in resp.text and 'name="viewport"' in resp.text
    en = client.get("/self-check?lang=en")
    assert '<html lang="en">' in en.text and "Self-check: was this collection lawful?" in en.text


def test_a_description_gives_the_verdict_findings_and_a_letter(client) -> None:
    token = csrf_from(client.get("/self-check").text)
    resp = client.post("/self-check", data={"csrf_token": token, "text": SEED})
    assert resp.status_code == 200
    html = resp.text
    assert 'data-verdict="unlawful"' in html and "违法" in html
    assert 'data-rule="cn.contact_list_source"' in html and 'data-citation="CN:PIPL:10"' in html
    assert "不得非法买卖、提供或者公开他人个人信息" in html  # the article as the catalogue quotes it
    assert "可能的法律后果" in html and "12378" in html
    assert 'id="letter"' in html and "投诉信" in html and "删除违法获取、使用的本人手机通讯录信息" in html
    assert "@media print" in html and "window.print()" in html


def test_the_questionnaire_alone(client) -> None:
    token = csrf_from(client.get("/self-check?lang=en").text)
    form = {"csrf_token": token, "who": ["relative"], "how": ["call"], "time": "14:00", "purpose": "locate",
            "source": "borrower_designated"}
    html = client.post("/self-check?lang=en", data=form).text
    assert 'data-verdict="undetermined"' in html and 'data-field="history.borrower_unreachable"' in html
    assert "Could you yourself not be reached" in html and 'id="letter"' not in html
    form |= {"unreachable": "no", "said": ["debt_existence"]}
    html = client.post("/self-check?lang=en", data=form).text
    assert 'data-verdict="unlawful"' in html and 'data-rule="cn.third_party.disclosure"' in html
    assert "Y2</span>" in html  # texts read only in a secondary copy are marked
    assert 'value="relative" checked' in html  # the answers are kept for a second try


def test_a_post_without_the_csrf_token_is_refused(client) -> None:
    client.get("/self-check")
    resp = client.post("/self-check", data={"csrf_token": "forged", "text": SEED})
    assert resp.status_code == 403 and "页面已过期" in resp.text and 'data-verdict' not in resp.text


def test_an_empty_form_asks_for_something(client) -> None:
    token = csrf_from(client.get("/self-check").text)
    resp = client.post("/self-check", data={"csrf_token": token})
    assert resp.status_code == 422 and "请至少选择联系了谁" in resp.text


def test_the_page_shares_the_assess_rate_limit(container) -> None:
    client = limited(container, 2)
    token = csrf_from(client.get("/self-check").text)
    statuses = [client.post("/self-check", data={"csrf_token": token, "text": SEED}).status_code
                for _ in range(3)]
    assert statuses == [200, 200, 429]
