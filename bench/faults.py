"""Fault injection: API workers and the daily run killed with SIGKILL at random moments.

    .venv/bin/python bench/faults.py [--api-kills 50] [--daily-kills 20] [--loans 3000] [--seed 5]

Each check returns a dict whose ``problems`` list must be empty; tests/e2e/test_faults.py runs the
same functions with small numbers in CI. Prints one JSON object; exits 1 if any check found a problem.

1. ``api_kills``: ``uvicorn --workers 2`` on PostgreSQL, 8 client threads POSTing contact attempts
   without pause (each body carries a unique marker in its message), and SIGKILL of a random worker
   1.5–4 s after both workers are up again (uvicorn replaces a dead one). Afterwards, in the database: every 201 the
   client received has its row, its allow decision and its audit records; every row has them too;
   no marker is stored twice (nothing doubled); every 403 has its deny decision; no cap is passed;
   ``collectguard audit verify`` exits 0; with the outbox wired into attempts, every message-channel
   attempt has exactly one outbox row.
2. ``daily_kills``: a demo portfolio (SQLite file or PostgreSQL template copy); a reference
   ``collectguard daily --json`` run; then per trial a fresh copy, the run SIGKILLed at a random
   moment (mostly inside its stages, sometimes while it starts), and a rerun — whose summary and
   table contents must equal the reference's.

The single-shot faults (database unreachable, read-only or full disk) are deterministic and live
in tests/e2e/test_faults.py only.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import importlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from attempts_load import attempt_times, pg_database, seed_world, uvicorn_server, verify, workers_of

CG = str(Path(sys.executable).with_name("collectguard"))


def _cli(url: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CG, "--database-url", url, *args], capture_output=True, text=True, timeout=timeout)


def _client(base: str, token: str, cases: list[int], stop: threading.Event, sent: dict[str, Any],
            inflight: list[int], seed: int) -> None:
    rng, port, times = random.Random(seed), int(base.rsplit(":", 1)[1]), attempt_times()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    conn, n = None, 0
    while not stop.is_set():
        marker = f"m{seed}-{n}"
        n += 1
        body = {"case_id": rng.choice(cases), "channel": rng.choice(["call", "call", "sms"]),
                "recipient": {"role": "borrower"}, "time": rng.choice(times),
                "message": f"您好，请登录App查看本期账单，如有困难可申请分期。编号{marker}"}
        inflight[0] += 1
        try:
            conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", "/api/v1/contact-attempts", json.dumps(body, ensure_ascii=False).encode(), headers)
            r = conn.getresponse()
            sent[marker] = (r.status, json.loads(r.read() or b"null"))
        except (OSError, http.client.HTTPException):
            sent[marker] = ("lost", None)  # the worker died: the attempt may or may not be committed
            if conn is not None:
                conn.close()
            conn = None
            time.sleep(0.05)
        finally:
            inflight[0] -= 1
    if conn is not None:
        conn.close()


def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    """All rows of one query, on a short-lived engine (the database may be another process's)."""
    from sqlalchemy import create_engine, text

    from collectguard.adapters.db.engine import normalise_url

    eng = create_engine(normalise_url(url))
    try:
        with eng.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        eng.dispose()


def _attempt_problems(url: str, sent: dict[str, Any]) -> list[str]:
    q = {
        "attempt": "SELECT a.id, a.decision_id, a.message, a.channel, d.verdict FROM contact_attempt a "
                   "LEFT JOIN decision d ON d.id = a.decision_id",
        "decision": "SELECT id, verdict, event->>'message' FROM decision",
        "audit": "SELECT subject, action, COUNT(*) FROM audit_record GROUP BY subject, action",
    }
    rows = {k: _rows(url, v) for k, v in q.items()}
    outbox = dict(_rows(url, "SELECT subject, COUNT(*) FROM outbox GROUP BY subject"))
    wired = hasattr(importlib.import_module("collectguard.services.attempts"), "outbox_enqueue_attempt")
    audit = {(s, a): n for s, a, n in rows["audit"]}
    attempts = {r[0]: r for r in rows["attempt"]}
    decisions = {r[0]: r for r in rows["decision"]}
    problems = []
    markers = [m.rsplit("编号", 1)[-1] for _, _, m, _, _ in rows["attempt"]]
    if len(markers) != len(set(markers)):
        problems.append("an attempt is stored twice")
    if any(m not in sent for m in markers):
        problems.append("an attempt nobody sent")
    for marker, (status, body) in sent.items():
        row = attempts.get(body["attempt_id"]) if status == 201 else None
        if status == 201 and (row is None or marker not in (row[2] or "")):
            problems.append(f"201 for {marker} but no such attempt row")
        if status == 403 and decisions.get(body.get("decision_id"), (0, ""))[1] != "deny":
            problems.append(f"403 for {marker} without its deny decision")
    for aid, _did, _m, channel, verdict in attempts.values():
        if verdict != "allow":
            problems.append(f"attempt {aid} without an allow decision")
        if audit.get((f"contact_attempt:{aid}", "contact_attempt.reserve")) != 1:
            problems.append(f"attempt {aid} without exactly one reserve audit record")
        if wired and channel in ("sms", "email", "im") and outbox.get(f"contact_attempt:{aid}") != 1:
            problems.append(f"attempt {aid} without exactly one outbox message")
    for did in decisions:
        if audit.get((f"decision:{did}", "contact_attempt.check")) != 1:
            problems.append(f"decision {did} without exactly one audit record")
    return problems


def api_kills(*, kills: int, borrowers: int = 50, clients: int = 8, seed: int = 5) -> dict[str, Any]:
    """SIGKILL API workers mid-request ``kills`` times, then check that nothing was lost or doubled."""
    rng = random.Random(seed)
    with pg_database() as url:
        world = seed_world(url, borrowers, seed=seed)
        sent: dict[str, Any] = {}
        inflight, stop, killed, busy_kills = [0], threading.Event(), 0, 0
        with uvicorn_server(url, 2) as (base, proc):
            threads = [threading.Thread(target=_client, args=(base, world["token"], world["cases"], stop, sent,
                                                              inflight, seed * 100 + i)) for i in range(clients)]
            for t in threads:
                t.start()
            deadline = time.monotonic() + 60 + kills * 10
            while killed < kills and time.monotonic() < deadline:
                # uvicorn replaces a dead worker; let the replacement start and take requests (both
                # workers serving), then kill one at a random moment of that traffic.
                while len(pids := workers_of(proc.pid)) < 2 and time.monotonic() < deadline:
                    time.sleep(0.1)
                time.sleep(rng.uniform(1.5, 4.0))
                pids = workers_of(proc.pid)
                if not pids:
                    continue
                busy_kills += inflight[0] > 0
                with contextlib.suppress(ProcessLookupError):
                    os.kill(rng.choice(pids), signal.SIGKILL)
                    killed += 1
            time.sleep(1.0)
            stop.set()
            for t in threads:
                t.join(timeout=60)
        statuses: dict[str, int] = {}
        for status, _ in sent.values():
            statuses[str(status)] = statuses.get(str(status), 0) + 1
        problems = _attempt_problems(url, sent)
        caps = verify(url)
        problems += [f"cap passed: {k}" for k, v in caps.items() if k.endswith(("over_6", "over_3")) and v]
        audit = _cli(url, "audit", "verify")
        if audit.returncode != 0:
            problems.append(f"audit verify failed: {audit.stderr.strip()[:300]}")
    return {"kills": killed, "kills_with_requests_in_flight": busy_kills, "requests": len(sent),
            "responses": statuses, "stored_attempts": caps["attempts"], "decisions": caps["decisions"],
            "audit_verify_exit": audit.returncode, "problems": problems}


DAILY_SQL = {
    "loan": "SELECT id, dpd, bucket, outstanding, overdue_amount, debt_status, as_of FROM loan ORDER BY id",
    "bucket_history": "SELECT loan_id, as_of, from_bucket, to_bucket FROM bucket_history ORDER BY loan_id, as_of",
    "collection_case": "SELECT loan_id, status, bucket, dpd, opened_on, closed_on, close_reason, paused_reason, "
                       "assignee_user_id, agency_tenant_id FROM collection_case ORDER BY loan_id, opened_on",
    "work_item": "SELECT w.as_of, c.loan_id, w.step, w.recipient_key, w.channel, w.local_time, w.status, w.pack "
                 "FROM work_item w JOIN collection_case c ON c.id = w.case_id "
                 "ORDER BY w.as_of, c.loan_id, w.step, w.recipient_key",
    "daily_run": "SELECT as_of, status FROM daily_run ORDER BY as_of",
    "audit": "SELECT chain, seq, action, subject FROM audit_record ORDER BY chain, seq",
}


def _daily_state(url: str) -> dict[str, Any]:
    return {k: [tuple(map(str, r)) for r in _rows(url, q)] for k, q in DAILY_SQL.items()}


def _stages_done(url: str) -> int:
    """How far a killed run got: the stages its ``daily_run`` row records as done (-1: no row yet)."""
    rows = _rows(url, "SELECT summary FROM daily_run")
    if not rows:
        return -1
    summary = json.loads(rows[0][0]) if isinstance(rows[0][0], str) else rows[0][0]
    return len((summary or {}).get("stages", {}))


def _wait_for_row(url: str, p: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Until the run being tested has created its ``daily_run`` row (or ended)."""
    deadline = time.monotonic() + timeout
    while p.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # the table may not exist yet
            if _rows(url, "SELECT 1 FROM daily_run"):
                return
        time.sleep(0.02)


@contextlib.contextmanager
def _copies(backend: str, url: str, tmp: Path) -> Any:
    """A function that makes a fresh copy of the seeded database and returns its URL."""
    if backend == "sqlite":
        src, n = Path(url.removeprefix("sqlite:///")), [0]

        def copy() -> str:
            n[0] += 1
            dst = tmp / f"copy{n[0]}.db"
            shutil.copy(src, dst)
            return f"sqlite:///{dst}"

        yield copy
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(url)
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def copy_pg() -> str:
        name = f"{base.database}_c{len(made)}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{base.database}"'))
        made.append(name)
        return base.set(database=name).render_as_string(hide_password=False)

    try:
        yield copy_pg
    finally:
        with admin.connect() as conn:
            for name in made:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def daily_kills(*, kills: int, loans: int = 3000, backend: str = "sqlite", seed: int = 5) -> dict[str, Any]:
    """SIGKILL ``collectguard daily`` at random moments; each rerun must equal an uninterrupted run."""
    rng, problems, points = random.Random(seed), [], []
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        url = f"sqlite:///{Path(tmp) / 'seed.db'}" if backend == "sqlite" else stack.enter_context(pg_database())
        seeded = _cli(url, "demo", "--loans", str(loans), "--seed", str(seed))
        if seeded.returncode != 0:
            return {"problems": [f"demo failed: {seeded.stderr[-300:]}"]}
        as_of = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8))).date().isoformat()
        copy = stack.enter_context(_copies(backend, url, Path(tmp)))
        ref_url, t0 = copy(), time.perf_counter()
        ref = _cli(ref_url, "daily", "--as-of", as_of, "--json")
        ref_seconds = time.perf_counter() - t0
        ref_json = json.loads(ref.stdout)
        want = {k: v for k, v in ref_json.items() if k != "seconds"}
        want_state, work = _daily_state(ref_url), float(ref_json["seconds"])  # the stages' own time
        for i in range(kills):
            trial = copy()
            p = subprocess.Popen([CG, "--database-url", trial, "daily", "--as-of", as_of, "--json"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            t0 = time.perf_counter()
            if rng.random() < 0.1:  # now and then while the process starts (imports, migration check)
                time.sleep(rng.uniform(0, ref_seconds / 2))
            else:  # mostly inside the stages: from the moment the run's row exists
                _wait_for_row(trial, p)
                time.sleep(rng.uniform(0, 1.1 * work))
            at = time.perf_counter() - t0
            p.send_signal(signal.SIGKILL)
            finished_first = p.wait() == 0
            points.append({"after_s": round(at, 2), "finished_before_kill": finished_first,
                           "stages_done": _stages_done(trial)})
            again = _cli(trial, "daily", "--as-of", as_of, "--json")
            got = {k: v for k, v in json.loads(again.stdout or "{}").items() if k != "seconds"}
            if got != want:
                problems.append(f"trial {i}: rerun summary differs: {got} != {want}")
            elif _daily_state(trial) != want_state:
                problems.append(f"trial {i}: rerun left different rows than the uninterrupted run")
    return {"backend": backend, "loans": loans, "trials": kills, "reference_seconds": round(ref_seconds, 2),
            "killed_mid_run": sum(not p["finished_before_kill"] for p in points),
            "stages_done_when_killed": {str(k): sum(p["stages_done"] == k for p in points)
                                        for k in sorted({p["stages_done"] for p in points})},
            "problems": problems}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--api-kills", type=int, default=50)
    ap.add_argument("--daily-kills", type=int, default=20)
    ap.add_argument("--loans", type=int, default=3000)
    ap.add_argument("--backend", choices=("sqlite", "postgres"), default="postgres")
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    t0 = time.perf_counter()
    result = {
        "api_kills": api_kills(kills=args.api_kills, seed=args.seed),
        "daily_kills": daily_kills(kills=args.daily_kills, loans=args.loans, backend=args.backend, seed=args.seed),
    }
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["all_green"] = not any(v["problems"] for v in result.values() if isinstance(v, dict))
    print(json.dumps(result, ensure_ascii=False, default=str))
    sys.exit(0 if result["all_green"] else 1)


if __name__ == "__main__":
    main()
