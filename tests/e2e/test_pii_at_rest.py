"""Personal data at rest: after an import through the real CLI and reads through a real server process,
neither the SQLite files (database, -wal, -shm) nor the JSON log hold a name, phone number or ID number
in plain text, in any of the forms a number is written (E.164, digits only, national, spaced).

The people are made up for this test (distinctive names, numbers that appear nowhere else), so finding
one of them anywhere in the bytes can only be a leak. Controls prove the data is there and readable: the
reveal endpoints return the numbers in clear, and the bytes do contain the non-personal fields written
beside them (the borrower ids).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from collectguard.adapters.crypto import mask_phone
from collectguard.domain.validation import cn_id_check_char

CLI = [sys.executable, "-c", "from collectguard.cli.main import main; main()"]  # the installed entry point
TODAY = dt.datetime.now(dt.UTC).date()


def _id_number(area: str, born: str, seq: str) -> str:
    first17 = area + born + seq
    return first17 + cn_id_check_char(first17)


BORROWERS = [  # (ext id, name, national mobile number, resident ID number)
    ("PB01", "欧阳翠花", "13912340017", _id_number("110101", "19880412", "517")),
    ("PB02", "司马长风", "13712340029", _id_number("310104", "19790923", "624")),
    ("PB03", "Quintessa Vandermeer", "15912340031", _id_number("440305", "19950105", "738")),
]
CONTACTS = [  # (borrower, contact id, name, number, relation)
    ("PB01", "PC01", "诸葛青云", "13612340043", "spouse"),
    ("PB02", "PC02", "上官飞燕", "18812340057", "relative"),
]
ADDED = ("慕容秋水", "13512340069")  # a contact the borrower designates later, through the API


def _forms(national: str) -> list[str]:
    """Every way the number may be written: national, E.164, digits-only E.164, spaced, dashed."""
    return [national, f"+86{national}", f"86{national}", f"{national[:3]} {national[3:7]} {national[7:]}",
            f"{national[:3]}-{national[3:7]}-{national[7:]}"]


def _needles() -> dict[str, bytes]:
    out: dict[str, str] = {}
    people = [(b[1], b[2]) for b in BORROWERS] + [(c[2], c[3]) for c in CONTACTS] + [ADDED]
    for name, number in people:
        out[f"name {name}"] = name
        out[f"name {name} (JSON-escaped)"] = json.dumps(name)[1:-1]
        for form in _forms(number):
            out[f"phone {form}"] = form
    for _ext, _name, _phone, id_number in BORROWERS:
        out[f"id {id_number}"] = id_number
        out[f"id {id_number} (birth date part)"] = id_number[6:14] + id_number[14:17]
    return {k: v.encode("utf-8") for k, v in out.items()}


def _write_csvs(folder: Path) -> dict[str, Path]:
    disbursed, due = TODAY - dt.timedelta(days=200), TODAY - dt.timedelta(days=40)
    files = {
        "borrowers": ["borrower_id,name,phone,id_number,jurisdiction,timezone,language"]
        + [f"{e},{n},{p},{i},CN,Asia/Shanghai,zh-CN" for e, n, p, i in BORROWERS],
        "contacts": ["borrower_id,contact_id,name,phone,relation,source"]
        + [f"{b},{c},{n},{p},{r},borrower_designated" for b, c, n, p, r in CONTACTS],
        "loans": ["loan_id,borrower_id,lender_type,principal,currency,annual_rate,upfront_fees,disbursed_on,"
                  "lpr_at_signing"]
        + [f"PL{n:02d},{e},licensed_institution,6000.00,CNY,18.0,0,{disbursed},"
           for n, (e, *_rest) in enumerate(BORROWERS, 1)],
        "installments": ["loan_id,seq,due_date,principal_due,interest_due,fee_due"]
        + [f"PL{n:02d},1,{due},3000.00,90.00,0.00" for n in range(1, len(BORROWERS) + 1)]
        + [f"PL{n:02d},2,{TODAY + dt.timedelta(days=20)},3000.00,45.00,0.00" for n in range(1, len(BORROWERS) + 1)],
    }
    out = {}
    for kind, lines in files.items():
        out[kind] = folder / f"{kind}.csv"
        out[kind].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Import, run the day, start the server, read personal data through it; yields the paths to scan."""
    home = tmp_path_factory.mktemp("pii")
    db, log = home / "pii.db", home / "server.log.jsonl"
    env = {**os.environ, "COLLECTGUARD_DATABASE_URL": f"sqlite:///{db}", "COLLECTGUARD_LOG_JSON": "true",
           "COLLECTGUARD_LOG_LEVEL": "DEBUG", "COLLECTGUARD_ENVIRONMENT": "development"}
    for name in ("PII_KEY", "PII_KEY_ID", "PII_OLD_KEYS", "PII_HMAC_KEY"):
        env.pop(f"COLLECTGUARD_{name}", None)

    def cli(*args: str) -> str:
        with log.open("ab") as sink:  # the CLI's log lines (stderr) go to the same log file
            done = subprocess.run([*CLI, *args], env=env, cwd=home, stdout=subprocess.PIPE, stderr=sink,
                                  timeout=300, check=False)
        assert done.returncode == 0, (args, log.read_text(encoding="utf-8")[-2000:])
        return done.stdout.decode("utf-8")

    csvs = _write_csvs(home)
    for kind in ("borrowers", "contacts", "loans", "installments"):
        cli("import", kind, str(csvs[kind]), "--tenant", "pii-lender")
    cli("daily", "--as-of", TODAY.isoformat(), "--json")
    collector = cli("token", "create", "--tenant", "pii-lender", "--role", "collector").strip()
    officer = cli("token", "create", "--tenant", "pii-lender", "--role", "compliance_officer").strip()
    for p in csvs.values():
        p.unlink()  # the CSV files hold the people in clear; only the database and the log may remain

    port = _free_port()
    with log.open("ab") as sink:
        server = subprocess.Popen([*CLI, "serve", "--port", str(port)], env=env, cwd=home,
                                  stdout=sink, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    seen: dict[str, object] = {}
    clients = contextlib.ExitStack()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, log.read_text(encoding="utf-8")[-2000:]
            time.sleep(0.3)
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:  # ids only; the database is not changed
            borrowers = dict(conn.execute("SELECT ext_id, id FROM borrower"))
            contacts = dict(conn.execute("SELECT ext_id, id FROM contact"))
            cases = [r[0] for r in conn.execute("SELECT id FROM collection_case ORDER BY id")]
        coll = clients.enter_context(httpx.Client(base_url=base, headers={"Authorization": f"Bearer {collector}"},
                                                  timeout=30))
        comp = clients.enter_context(httpx.Client(base_url=base, headers={"Authorization": f"Bearer {officer}"},
                                                  timeout=30))
        reveal = {"reason": "借款人来电核对身份"}
        seen["borrower phones"] = [coll.post(f"/api/v1/borrowers/{borrowers[e]}/phone/reveal", json=reveal).json()
                                   for e, *_r in BORROWERS]
        seen["contact phones"] = [comp.post(f"/api/v1/contacts/{contacts[c[1]]}/phone/reveal", json=reveal).json()
                                  for c in CONTACTS]
        seen["case pages"] = [coll.get(f"/work/cases/{k}").status_code for k in cases]
        seen["queue"] = coll.get("/work").status_code
        added = coll.post(f"/api/v1/borrowers/{borrowers['PB01']}/contacts",
                          json={"name": ADDED[0], "phone": ADDED[1], "relation": "emergency_contact"})
        seen["added"] = added.status_code
        seen["duplicate"] = coll.post(f"/api/v1/borrowers/{borrowers['PB01']}/contacts",  # a refused write
                                      json={"name": ADDED[0], "phone": f"+86{ADDED[1]}", "relation": "relative"}
                                      ).status_code
        seen["bad phone"] = coll.post(f"/api/v1/borrowers/{borrowers['PB02']}/contacts",
                                      json={"name": "某人", "phone": BORROWERS[0][2] + "99", "relation": "relative"}
                                      ).status_code
        # A failed sign-in is logged (the username is a number); a portal code is sent to a number.
        browser = clients.enter_context(httpx.Client(base_url=base, timeout=30))
        token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/signin").text).group(1)
        seen["sign-in"] = browser.post("/signin", data={"username": BORROWERS[1][2], "password": "x" * 12,
                                                        "csrf_token": token}).status_code
        token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/portal").text).group(1)
        seen["portal code"] = browser.post("/portal", data={"step": "send", "phone": BORROWERS[2][2],
                                                            "csrf_token": token}).status_code  # an SMS is queued
    finally:
        clients.close()
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    files = [db, *(db.with_name(db.name + suffix) for suffix in ("-wal", "-shm", "-journal"))]
    return {"files": [f for f in files if f.exists()], "log": log, "seen": seen, "borrowers": borrowers}


def test_the_run_really_read_and_wrote_personal_data(run):
    seen = run["seen"]
    assert [r["phone"] for r in seen["borrower phones"]] == [f"+86{b[2]}" for b in BORROWERS]
    assert [r["phone"] for r in seen["contact phones"]] == [f"+86{c[3]}" for c in CONTACTS]
    assert seen["case pages"] and set(seen["case pages"]) == {200} and seen["queue"] == 200
    assert seen["added"] == 201 and seen["duplicate"] == 409 and seen["bad phone"] == 422
    assert seen["sign-in"] == 401 and seen["portal code"] == 200
    raw = b"".join(f.read_bytes() for f in run["files"])
    assert all(ext.encode() in raw for ext in run["borrowers"])  # the scan reads the real data pages
    log = run["log"].read_bytes()
    assert b'"event": "request"' in log and mask_phone(BORROWERS[1][2]).encode() in log  # logged, masked


@pytest.mark.parametrize("what", ["database", "log"])
def test_no_name_number_or_id_in_clear(run, what):
    paths = run["files"] if what == "database" else [run["log"]]
    found = []
    for path in paths:
        raw = path.read_bytes()
        found += [f"{path.name}: {label}" for label, needle in _needles().items() if needle in raw]
    assert not found, found
