"""Contact attempts under load: PostgreSQL, several uvicorn workers, a load generator on loopback.

    .venv/bin/python bench/attempts_load.py [--workers 2,4] [--borrowers 2000] [--duration 20]
        [--connections 8,32] [--hot 0.1] [--profile]

For each worker count: a fresh PostgreSQL database (COLLECTGUARD_TEST_POSTGRES_URL, default
postgresql://root@127.0.0.1:5432/test as the admin URL), N borrowers each with an overdue loan and
an open case plus one collector token, seeded directly through the models and services (not over
HTTP); ``uvicorn --workers W`` on a free loopback port; then ``wrk`` (Debian's ``apt-get install
wrk``: C, so the generator takes little of the two cores) POSTs /api/v1/contact-attempts for
``--duration`` seconds at each ``--connections`` level. Bodies are random: 80 % calls, 20 % SMS, to a random
case, at 09:00–20:59 Beijing on one of the next 6 days; a share ``--hot`` of requests are calls to
4 hot borrowers, all on tomorrow, so that the caps are hit under contention.

Reported per run: attempts/s (answered 201 + 403), allowed and denied, latency p50/p90/p99, the
CPU seconds spent by the API workers and this database's PostgreSQL backends (``/proc``, sampled
every 0.25 s so that the backend of a connection the pool closed still counts) and by the load
generator (``wait4``), the PostgreSQL connections opened during the run (pool churn; approximate:
the statistics lag), and the verification in the database afterwards: **no borrower past any cap**
(calls per number per local day <= 6, connected calls <= 3) and one decision per answered
request. ``--profile`` samples one worker with py-spy (when installed) and reports where its time
goes. Request logging is at WARNING, as in production behind a proxy that logs access.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("COLLECTGUARD_TEST_POSTGRES_URL", "postgresql://root@127.0.0.1:5432/test")
BEIJING = ZoneInfo("Asia/Shanghai")
APP = """from collectguard.api.app import create_app
from collectguard.bootstrap import build
from collectguard.rules import Guard


def app():
    Guard.default()  # compile the packs at start-up, not inside the first requests
    return create_app(build())
"""
CAP_SQL = {  # rows returned = borrowers past a cap (must be none)
    "calls_per_number_per_day_over_6": "SELECT borrower_id, recipient_key, local_date FROM contact_attempt "
    "WHERE channel = 'call' GROUP BY borrower_id, recipient_key, local_date HAVING COUNT(*) > 6",
    "connected_calls_per_day_over_3": "SELECT borrower_id, local_date FROM contact_attempt WHERE channel = 'call' "
    "AND outcome IN ('connected','ptp','refused','dispute','no_contact_request') "
    "GROUP BY borrower_id, local_date HAVING COUNT(*) > 3",
}


@contextlib.contextmanager
def pg_database(admin_url: str = ADMIN_URL) -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards; yields its URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from collectguard.adapters.db.engine import normalise_url

    admin = create_engine(normalise_url(admin_url), isolation_level="AUTOCOMMIT")
    name = f"cg_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(normalise_url(admin_url)).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def seed_world(url: str, borrowers: int, *, seed: int = 1) -> dict[str, Any]:
    """Migrate ``url`` and insert one lender, ``borrowers`` borrowers with an overdue loan and an open
    case each, and a collector token (valid on the real clock). Returns case ids and the token."""
    from decimal import Decimal

    from sqlalchemy import insert

    from collectguard.adapters.db.models import Borrower, Case, Loan
    from collectguard.bootstrap import build
    from collectguard.services.accounts import token_create
    from collectguard.services.tenancy import tenant_ensure
    from collectguard.settings import Settings

    c = build(Settings(database_url=url, environment="test"))
    rng, now = random.Random(seed), dt.datetime.now(dt.UTC)
    with c.uow() as s:
        t = tenant_ensure(s, code="lender-load", name="压测贷", now=now)
        phones = [f"+86138{rng.randrange(10**8):08d}" for _ in range(borrowers)]
        b_ids = list(
            s.scalars(
                insert(Borrower).returning(Borrower.id, sort_by_parameter_order=True),
                [
                    {
                        "tenant_id": t.id,
                        "ext_id": f"B{i}",
                        "name_enc": c.cipher.encrypt("张三"),
                        "phone_enc": c.cipher.encrypt(p),
                        "phone_hmac": c.cipher.lookup_hash(p),
                        "jurisdiction": "CN",
                        "timezone": "Asia/Shanghai",
                        "language": "zh-CN",
                        "status": "active",
                        "created_at": now,
                    }
                    for i, p in enumerate(phones)
                ],
            )
        )
        l_ids = list(
            s.scalars(
                insert(Loan).returning(Loan.id, sort_by_parameter_order=True),
                [
                    {
                        "tenant_id": t.id,
                        "ext_id": f"L{i}",
                        "borrower_id": b,
                        "lender_type": "licensed_institution",
                        "principal": Decimal("10000"),
                        "currency": "CNY",
                        "annual_rate": Decimal("18"),
                        "disbursed_on": dt.date(2025, 10, 1),
                        "lpr_at_signing": Decimal("3.45"),
                        "dpd": 18,
                        "bucket": "M1",
                        "debt_status": "valid",
                        "created_at": now,
                    }
                    for i, b in enumerate(b_ids)
                ],
            )
        )
        case_ids = list(
            s.scalars(
                insert(Case).returning(Case.id, sort_by_parameter_order=True),
                [
                    {
                        "tenant_id": t.id,
                        "loan_id": loan,
                        "borrower_id": b,
                        "status": "open",
                        "bucket": "M1",
                        "dpd": 18,
                        "opened_on": dt.date(2026, 3, 20),
                    }
                    for loan, b in zip(l_ids, b_ids, strict=True)
                ],
            )
        )
        token = token_create(s, tenant_code="lender-load", role="collector", actor="bench", now=now)[1]
    c.engine.dispose()
    return {"cases": case_ids, "token": token}


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def workers_of(pid: int) -> list[int]:
    """uvicorn's worker processes: children of ``pid`` started by multiprocessing's spawn (not its
    resource tracker)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if (
                int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid
                and b"spawn_main" in (stat.parent / "cmdline").read_bytes()
            ):
                out.append(int(stat.parent.name))
    return sorted(out)


@contextlib.contextmanager
def uvicorn_server(
    url: str, workers: int, *, log_level: str = "WARNING", env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``uvicorn --workers N`` serving collectguard against ``url``; yields (base URL, process)."""
    import httpx

    tmp = Path(tempfile.mkdtemp(prefix="cg-uvicorn-"))
    (tmp / "cg_asgi.py").write_text(APP, encoding="utf-8")
    port = free_port()
    full_env = {
        **os.environ,
        "COLLECTGUARD_DATABASE_URL": url,
        "COLLECTGUARD_ENVIRONMENT": "test",
        "COLLECTGUARD_LOG_LEVEL": log_level,
        "COLLECTGUARD_LOG_JSON": "false",
        **(env or {}),
    }
    log = (tmp / "uvicorn.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "cg_asgi:app",
            "--app-dir",
            str(tmp),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
            "--timeout-graceful-shutdown",
            "5",
        ],
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited: {(tmp / 'uvicorn.log').read_text()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/health", timeout=2).status_code == 200 and len(workers_of(proc.pid)) >= workers:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start: {(tmp / 'uvicorn.log').read_text()[-2000:]}")
            time.sleep(0.3)
        time.sleep(1.0)  # every worker, not only the first to answer, finishes its start-up
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def attempt_times(days: int = 6) -> list[str]:
    """Planned times the server accepts (ahead of its real clock, inside a week, in allowed hours)."""
    today = dt.datetime.now(BEIJING).replace(minute=0, second=0, microsecond=0)
    return [
        (today + dt.timedelta(days=d)).replace(hour=h).isoformat() for d in range(1, days + 1) for h in range(9, 21)
    ]


def verify(url: str) -> dict[str, Any]:
    """Caps and bookkeeping in the database after a run: overshoots must all be 0."""
    from sqlalchemy import create_engine, text

    from collectguard.adapters.db.engine import normalise_url

    eng = create_engine(normalise_url(url))
    with eng.connect() as conn:
        out: dict[str, Any] = {k: len(conn.execute(text(q)).all()) for k, q in CAP_SQL.items()}
        out["attempts"] = conn.execute(text("SELECT COUNT(*) FROM contact_attempt")).scalar_one()
        out["decisions"] = conn.execute(text("SELECT COUNT(*) FROM decision")).scalar_one()
        out["attempts_without_decision"] = conn.execute(
            text(
                "SELECT COUNT(*) FROM contact_attempt a LEFT JOIN decision d ON d.id = a.decision_id "
                "WHERE d.id IS NULL OR d.verdict <> 'allow'"
            )
        ).scalar_one()
        out["max_calls_one_number_one_day"] = conn.execute(
            text(
                "SELECT COALESCE(MAX(n), 0) FROM (SELECT COUNT(*) n FROM contact_attempt WHERE channel = 'call' "
                "GROUP BY borrower_id, recipient_key, local_date) x"
            )
        ).scalar_one()
    eng.dispose()
    return out


WRK_LUA = r"""
local cases, hot, times, hot_times = {%(cases)s}, {%(hot)s}, {%(times)s}, {%(hot_times)s}
local token, hot_p = "%(token)s", %(hot_p)s
s201, s403, sother = 0, 0, 0
local n = 0
function setup(thread) table.insert(threads, thread) end
threads = {}
function init(args) math.randomseed(%(seed)d + os.time() %% 1000 + math.floor(os.clock() * 1e6)) end
function request()
  local is_hot = math.random() < hot_p
  local c = is_hot and hot[math.random(#hot)] or cases[math.random(#cases)]
  local ch = (is_hot or math.random() < 0.8) and "call" or "sms"
  local t = is_hot and hot_times[math.random(#hot_times)] or times[math.random(#times)]
  local body = string.format('{"case_id":%%d,"channel":"%%s","recipient":{"role":"borrower"},"time":"%%s"}',
                             c, ch, t)
  return wrk.format("POST", "/api/v1/contact-attempts",
                    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
end
function response(status, headers, body)
  if status == 201 then s201 = s201 + 1 elseif status == 403 then s403 = s403 + 1 else sother = sother + 1 end
end
function done(summary, latency, requests)
  local a, d, o = 0, 0, 0
  for _, t in ipairs(threads) do a = a + t:get("s201"); d = d + t:get("s403"); o = o + t:get("sother") end
  io.write(string.format('WRKJSON {"requests":%%d,"seconds":%%.3f,"allowed":%%d,"denied":%%d,"other":%%d,' ..
    '"socket_errors":%%d,"p50_ms":%%.2f,"p90_ms":%%.2f,"p99_ms":%%.2f,"max_ms":%%.2f}\n',
    summary.requests, summary.duration / 1e6, a, d, o,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3))
end
"""


def _wrk(
    base: str, world: dict[str, Any], hot: list[int], p_hot: float, connections: int, duration: int, seed: int
) -> dict[str, Any]:
    lua = WRK_LUA % {
        "cases": ",".join(map(str, world["cases"])),
        "hot": ",".join(map(str, hot)),
        "times": ",".join(f'"{t}"' for t in attempt_times()),
        "token": world["token"],
        "hot_times": ",".join(f'"{t}"' for t in attempt_times(days=1)),
        "hot_p": p_hot,
        "seed": seed,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
    try:
        p = subprocess.Popen(
            ["wrk", "-t", "1", "-c", str(connections), "-d", f"{duration}s", "--timeout", "10s", "-s", f.name, base],
            stdout=subprocess.PIPE,
            text=True,
        )
        # wait4 gives this child's own CPU time (a profiler finishing meanwhile is not counted).
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        out = p.stdout.read() if p.stdout else ""
        if p.stdout:
            p.stdout.close()
    finally:
        os.unlink(f.name)
    result = json.loads(next(line for line in out.splitlines() if line.startswith("WRKJSON "))[8:])
    result["load_generator_cpu_s"] = round(usage.ru_utime + usage.ru_stime, 2)
    return result


def _cpu_by_pid(api: set[int], database: str) -> dict[int, tuple[str, float]]:
    """CPU seconds so far of each process, with its group: API workers, PostgreSQL backends of
    ``database``, PostgreSQL's background processes (WAL writer, checkpointer…), everything else
    (other sessions' work on this shared machine; not reported)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, tuple[str, float]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            raw = stat.read_text()
            comm, rest = raw[raw.index("(") + 1 : raw.rindex(")")], raw.rsplit(")", 1)[1].split()
            pid, secs = int(stat.parent.name), (int(rest[11]) + int(rest[12])) / tick
            group = "api_workers" if pid in api else "other"
            if comm.startswith("postgres"):
                cmd = (stat.parent / "cmdline").read_bytes().decode(errors="replace")
                group = (
                    "postgresql_backends"
                    if f" {database} " in cmd
                    else "other"
                    if "127.0.0.1(" in cmd or "[local]" in cmd
                    else "postgresql_background"
                )
            out[pid] = (group, secs)
    return out


class CpuSampler:
    """CPU seconds by group between ``start`` and ``stop``, sampled every ``every`` seconds, so that a
    process that exits meanwhile (a PostgreSQL backend of a connection the pool closed) still counts
    up to its last sample — comparing two snapshots would lose it, or even go negative."""

    def __init__(self, api: set[int], database: str, every: float = 0.25) -> None:
        import threading

        self.api, self.database, self.every = api, database, every
        self.first = _cpu_by_pid(api, database)
        self.last = dict(self.first)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.last.update(_cpu_by_pid(self.api, self.database))

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        self.last.update(_cpu_by_pid(self.api, self.database))
        out = dict.fromkeys(("api_workers", "postgresql_backends", "postgresql_background"), 0.0)
        for pid, (group, secs) in self.last.items():
            if group in out:
                out[group] += secs - self.first.get(pid, (group, 0.0))[1]
        return out


def _pg_sessions(url: str) -> int:
    """Connections ever opened to this database (pg_stat_database.sessions, PostgreSQL 14+)."""
    from sqlalchemy import create_engine, text

    from collectguard.adapters.db.engine import normalise_url

    eng = create_engine(normalise_url(url))
    try:
        with eng.connect() as conn:
            return int(
                conn.execute(
                    text("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
                ).scalar_one()
            )
    finally:
        eng.dispose()


def _profile(pid: int, seconds: int) -> dict[str, Any] | None:
    """Where one worker's busy time goes (py-spy samples), by the innermost layer in each stack."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return None
    # py-spy names frames "func (package/module.py:line)"; the innermost frame of a known layer owns
    # the sample, so time in psycopg counts as the driver even when SQLAlchemy called it. py-spy
    # cannot tell psycopg's wait for the server's reply from work, so that share includes the
    # round trips to PostgreSQL.
    layers = (
        ("psycopg_incl_waiting_for_postgresql", "(psycopg"),
        ("sqlalchemy", "(sqlalchemy"),
        ("pydantic", "(pydantic"),
        ("guard_rules", "(collectguard/rules/"),
        ("audit_hashing", "(collectguard/services/audit"),
        ("structlog", "(structlog"),
        ("http_stack", ("(starlette", "(fastapi", "(uvicorn", "(h11", "(anyio")),
        ("collectguard_other", "(collectguard/"),
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "raw.txt"
        subprocess.run(
            [
                spy,
                "record",
                "-p",
                str(pid),
                "-d",
                str(seconds),
                "-r",
                "250",
                "-f",
                "raw",
                "-o",
                str(out),
                "--nonblocking",
            ],
            capture_output=True,
            check=False,
        )
        lines = out.read_text().splitlines() if out.exists() else []
    total, hits = 0, {name: 0 for name, _ in layers} | {"other": 0}
    for line in lines:
        stack, _, n = line.rpartition(" ")
        total += int(n)
        owner = next(
            (
                name
                for frame in reversed(stack.split(";"))
                for name, marks in layers
                if any(m in frame for m in ((marks,) if isinstance(marks, str) else marks))
            ),
            "other",
        )
        hits[owner] += int(n)
    return {"samples": total, **{k: round(v / max(total, 1), 3) for k, v in hits.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", default="2,4")
    ap.add_argument("--borrowers", type=int, default=2000)
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--connections", default="8,32")
    ap.add_argument("--hot", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("the load generator is wrk: apt-get install wrk (Debian)")
    runs = []
    for w in map(int, args.workers.split(",")):
        with pg_database() as url:
            world = seed_world(url, args.borrowers, seed=args.seed)
            hot, dbname = world["cases"][:4], url.rsplit("/", 1)[1]
            with uvicorn_server(url, w) as (base, proc):
                api = set(workers_of(proc.pid)) | {proc.pid}
                for conns in map(int, args.connections.split(",")):
                    sessions0 = _pg_sessions(url)
                    sampler, t0 = CpuSampler(api, dbname), time.perf_counter()
                    spy = None
                    if args.profile:
                        from concurrent.futures import ThreadPoolExecutor

                        pool = ThreadPoolExecutor(1)
                        spy = pool.submit(_profile, workers_of(proc.pid)[0], args.duration - 2)
                    r = _wrk(base, world, hot, args.hot, conns, args.duration, args.seed)
                    wall, cpu_s = time.perf_counter() - t0, sampler.stop()
                    if spy is not None:
                        r["profile_one_worker"] = spy.result()
                        pool.shutdown()
                    answered = r["allowed"] + r["denied"]
                    cpu = {k: round(v, 2) for k, v in cpu_s.items()}
                    cpu["load_generator"] = r.pop("load_generator_cpu_s")
                    runs.append(
                        {
                            "workers": w,
                            "connections": conns,
                            **r,
                            "attempts_per_s": round(answered / r["seconds"]),
                            "allowed_per_s": round(r["allowed"] / r["seconds"]),
                            "cpu_seconds": cpu,
                            "cpu_ms_per_attempt": {k: round(v * 1000 / max(answered, 1), 2) for k, v in cpu.items()},
                            "postgresql_connections_opened": _pg_sessions(url) - sessions0 - 1,
                            "wall_s": round(wall, 1),
                            "load_average_1m": round(os.getloadavg()[0], 2),
                        }
                    )
            runs[-1]["verify_after_all_runs_of_this_database"] = verify(url)
    print(
        json.dumps(
            {
                "borrowers": args.borrowers,
                "duration_s": args.duration,
                "client": "wrk -t1",
                "cpus": os.cpu_count(),
                "hot_share": args.hot,
                "runs": runs,
                "target": "attempts/s >= 1000 and p99 <= 25 ms on 2 cores",
            }
        )
    )


if __name__ == "__main__":
    main()
