"""``collectguard qa`` through the command line, and ``/api/v1/qa…`` through the real app with a token.

The CLI's exit codes are the contract's: 0 whatever the verdicts, 2 for bad input naming the line
and field. The API runs on both backends with bearer tokens (``qa.run``: compliance officer, team
lead, auditor; a collector may not).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from collectguard.api.app import create_app
from collectguard.services import accounts
from conftest import FIXED_NOW, create_database, in_process_cli, make_container

DATA = Path(__file__).parents[1] / "data" / "transcripts"
JSONL = DATA / "all.jsonl"
SAMPLES = sorted(DATA.glob("*.json"))
ROOT = Path(__file__).parents[2]


def expected_verdicts() -> list[str]:
    return [json.loads(p.read_text(encoding="utf-8"))["expected_verdict"] for p in SAMPLES]


def one(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))["input"]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request, tmp_path_factory):
    database = create_database(request.param, tmp_path_factory)
    c = make_container(database)
    with c.uow() as s:
        accounts.tenant_create(s, code="acme", actor="test", now=FIXED_NOW)
    yield database
    database.close()


@pytest.fixture
def cli(monkeypatch, capsys, tmp_path):
    """Run the CLI in this process, with exit code and output as a user sees them (no database)."""
    yield from in_process_cli(monkeypatch, capsys, cwd=tmp_path)


# ---- the CLI, pure ----------------------------------------------------------------------------------

def test_json_lines_give_one_result_per_line_in_order(cli, tmp_path):
    done = cli("qa", str(JSONL))
    assert done.returncode == 0, done.stderr
    results = [json.loads(x) for x in done.stdout.splitlines()]
    assert [r["verdict"] for r in results] == expected_verdicts()
    assert not (tmp_path / "collectguard.db").exists()  # judging stores nothing


def test_one_pretty_printed_transcript_from_stdin(cli):
    done = cli("qa", "-", stdin=json.dumps(one("unlawful__insult_laolai__zh"), ensure_ascii=False, indent=2))
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 1
    result = json.loads(done.stdout)
    finding = result["findings"][0]
    assert result["verdict"] == "violations" and set(finding) >= {"rule", "citations", "turn", "span",
                                                                  "message_zh", "message_en"}
    assert (finding["rule"], finding["turn"], finding["text"]) == ("cn.conduct.insult", 2, "老赖")


def test_a_json_array_gives_one_line_each(cli):
    docs = [one("lawful__polite_reminder__zh"), one("unlawful__late_night__zh")]
    done = cli("qa", stdin=json.dumps(docs, ensure_ascii=False))
    assert [json.loads(x)["verdict"] for x in done.stdout.splitlines()] == ["clean", "violations"]


def test_a_bad_line_stops_with_exit_2_naming_line_and_field(cli):
    lines = JSONL.read_text(encoding="utf-8").splitlines()[:2]
    bad = {**one("lawful__ptp__en"), "turns": [{"speaker": "agent", "t": 0, "text": "hi"}]}
    done = cli("qa", stdin="\n".join([lines[0], "", json.dumps(bad)]) + "\n")
    assert done.returncode == 2
    assert "line 3" in done.stderr and "turns.0.speaker" in done.stderr
    assert len(done.stdout.splitlines()) == 1  # the result before the bad line was written


@pytest.mark.parametrize(("stdin", "where"), [
    ('{\n  "jurisdiction": "CN",\n  "turns": [\n', "line 4"),
    ('{"jurisdiction": "CN", "channel": "call", "time": "2026-04-07T10:00:00+08:00", '
     '"recipient": {"role": "borrower"}, "message": "hi", "turns": [{"speaker": "collector", "t": 0, "text": "x"}]}',
     "field 'message'"),
    ('[{"jurisdiction": "CN"}]', "field '0.channel'"),
])
def test_malformed_documents_exit_2(cli, stdin, where):
    done = cli("qa", stdin=stdin)
    assert done.returncode == 2 and where in done.stderr, done.stderr


def test_a_missing_file_exits_2_and_empty_input_prints_nothing(cli, tmp_path):
    missing = cli("qa", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and "PATH" in missing.stderr
    empty = cli("qa", stdin="\n\n")
    assert empty.returncode == 0 and empty.stdout == ""


def test_the_real_command_and_its_light_imports():
    src = JSONL.read_text(encoding="utf-8").splitlines()[0] + "\n"
    done = subprocess.run([sys.executable, "-m", "collectguard", "qa", "-"], input=src, capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0 and json.loads(done.stdout)["verdict"] in {"clean", "violations"}
    probe = ("import sys, collectguard.cli.qa; heavy = [m for m in ('sqlalchemy', 'fastapi', "
             "'collectguard.rules.engine') if m in sys.modules]; print(heavy)")
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
                          timeout=60).stdout.strip() == "[]"


# ---- the CLI, storing ---------------------------------------------------------------------------------

def test_store_keeps_results_for_the_review_queue(cli, db, monkeypatch):
    monkeypatch.setenv("COLLECTGUARD_DATABASE_URL", db.url)
    monkeypatch.setenv("COLLECTGUARD_ENVIRONMENT", "test")
    first = cli("qa", str(JSONL), "--store", "--tenant", "acme")
    assert first.returncode == 0, first.stderr
    stored = [json.loads(x) for x in first.stdout.splitlines()]
    assert all(r["qa_id"] for r in stored) and [r["verdict"] for r in stored] == expected_verdicts()
    assert all(r["sampled"] for r in stored if r["verdict"] == "violations")
    again = cli("qa", str(JSONL), "--store", "--tenant", "acme")
    assert all(json.loads(x)["duplicate"] for x in again.stdout.splitlines())
    unknown = cli("qa", str(JSONL), "--store", "--tenant", "nobody")
    assert unknown.returncode == 2 and "tenant" in unknown.stderr


# ---- the HTTP API -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def api(db):
    c = make_container(db, log_json=False, log_level="WARNING")
    tokens = {}
    with c.uow() as s:
        for role in ("compliance_officer", "collector", "auditor"):
            tokens[role] = accounts.token_create(s, tenant_code="acme", role=role, actor="test", now=FIXED_NOW)[1]
        accounts.tenant_create(s, code="other", actor="test", now=FIXED_NOW)
        tokens["other"] = accounts.token_create(s, tenant_code="other", role="team_lead", actor="test",
                                                now=FIXED_NOW)[1]
    client = TestClient(create_app(c))

    def call(method: str, path: str, who: str = "compliance_officer", **kw):
        return client.request(method, f"/api/v1{path}", headers={"Authorization": f"Bearer {tokens[who]}"}, **kw)

    return call


def test_api_runs_qa_on_one_transcript_or_a_list(api):
    resp = api("POST", "/qa", json=one("unlawful__threat__zh"))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["verdict"] == "violations" and body["qa_id"] and body["sampled"]
    assert {"CN:CBA2026", "CN:CPM2023:41"} <= set(body["findings"][0]["citations"])
    many = api("POST", "/qa", json=[one("lawful__ptp__en"), one("unlawful__stop_calling__en")])
    assert [r["verdict"] for r in many.json()] == ["clean", "violations"]


def test_api_refuses_bad_transcripts_with_the_field_and_stores_nothing(api):
    before = len(api("GET", "/qa/queue", params={"include_reviewed": True, "limit": 1000}).json())
    bad = {**one("lawful__ptp__en"), "turns": [{"speaker": "collector", "t": -2, "text": "x"}]}
    resp = api("POST", "/qa", json=[one("unlawful__insult_laolai__zh"), bad])
    assert resp.status_code == 422 and resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["field"] == "1.turns.0.t"
    assert len(api("GET", "/qa/queue", params={"include_reviewed": True, "limit": 1000}).json()) == before
    assert api("POST", "/qa", json="hello").status_code == 422


def test_api_permissions_and_tenants(api):
    assert api("POST", "/qa", who="collector", json=one("lawful__ptp__en")).status_code == 403
    assert api("GET", "/qa/scorecards", who="collector").status_code == 403
    assert api("GET", "/qa/queue", who="auditor").status_code == 200
    qa_id = api("POST", "/qa", json=one("unlawful__extra_fees__zh")).json()["qa_id"]
    assert api("GET", f"/qa/results/{qa_id}", who="other").status_code == 404
    assert api("POST", "/qa/reviews", who="other", json={"qa_id": qa_id, "score": 50}).status_code == 404
    assert all(q["qa_id"] != qa_id for q in api("GET", "/qa/queue", who="other").json())


def test_api_review_queue_reviews_and_scorecards(api):
    qa_id = api("POST", "/qa", json=one("unlawful__impersonate_court__zh")).json()["qa_id"]
    queue = api("GET", "/qa/queue").json()
    assert qa_id in {q["qa_id"] for q in queue} and queue[0]["severity"] == "critical"
    for bad in ({"qa_id": qa_id, "score": 101}, {"qa_id": qa_id, "score": "80"}, {"qa_id": qa_id, "score": 5, "x": 1}):
        assert api("POST", "/qa/reviews", json=bad).status_code == 422
    assert api("POST", "/qa/reviews", json={"qa_id": 10**12, "score": 5}).status_code == 404
    resp = api("POST", "/qa/reviews", json={"qa_id": qa_id, "score": 15, "notes": "冒充法院，已约谈"})
    assert resp.status_code == 201 and resp.json()["score"] == 15
    assert qa_id not in {q["qa_id"] for q in api("GET", "/qa/queue").json()}
    detail = api("GET", f"/qa/results/{qa_id}").json()
    assert detail["transcript"]["turns"][0]["text"].startswith("王建国吗？这里是朝阳区人民法院")
    assert detail["reviews"][0]["notes"] == "冒充法院，已约谈"
    cards = {c["collector_id"]: c for c in api("GET", "/qa/scorecards").json()}
    assert cards["agent-03"]["average_review_score"] == 15.0 and cards["agent-03"]["calls"] >= 1
    assert api("GET", "/qa/schema").json()["title"] == "Transcript"
