"""The attempt hot path in process, A/B: CPU per attempt of this process and of its PostgreSQL backends.

    .venv/bin/python bench/attempts_inproc.py [--attempts 400] [--borrowers 300] [--rounds 2]

Each variant runs the same random attempts (80 % calls, 20 % SMS, 20 % of them to 4 hot borrowers,
so the caps bind) through the whole ASGI app (``TestClient``: envelope, token look-up, route,
service) on a fresh PostgreSQL database seeded like ``bench/attempts_load.py``. One client, one
request at a time: no queueing, no wall-clock noise from contention; CPU comes from
``time.process_time`` (this process, every thread) and ``/proc`` (the database's backends). The
variants put back, one by one, what session 3 round 2 removed:

- ``round1``: the token look-up in its own transaction and a ping on every checkout, as round 1
  left them; ``lookup_tx``: only the look-up in a transaction; ``ping_every``: only the ping on
  every checkout; ``now``: the code as it is.

A ``facts5`` variant (the attempt's facts as five statements) was measured at commit ``7ea2b06``
(docs/attempts.md); the five-statement code is gone since, only the tests keep a reference.

The answers (allowed/denied per request) must be equal across variants; the script checks.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from attempts_load import attempt_times, pg_database, seed_world

VARIANTS = ("now", "lookup_tx", "ping_every", "round1")


@contextlib.contextmanager
def variant(name: str) -> Iterator[dict[str, Any]]:
    """Monkeypatches that put back the round-1 behaviour named by ``name``; yields Settings overrides."""
    from collectguard.api import deps

    saved = deps._principal_of
    overrides: dict[str, Any] = {}
    if name in ("lookup_tx", "round1"):

        def in_tx(c: Any, token: str) -> Any:
            with c.uow(write=False) as s:
                return deps.principal_from_token(s, token=token, now=c.clock())

        deps._principal_of = in_tx
    if name in ("ping_every", "round1"):
        overrides["db_ping_idle_s"] = 0
    try:
        yield overrides
    finally:
        deps._principal_of = saved


def backend_cpu(engine: Any) -> float:
    """CPU seconds of every backend of this engine's database (this process's connections)."""
    from sqlalchemy import text

    with engine.connect() as conn:
        pids = conn.scalars(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).all()
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def run(name: str, bodies: list[dict[str, Any]], borrowers: int) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from collectguard.api.app import create_app
    from collectguard.bootstrap import build
    from collectguard.rules import Guard
    from collectguard.settings import Settings

    Guard.default()
    with pg_database() as url:
        world = seed_world(url, borrowers)
        with variant(name) as overrides:
            c = build(Settings(database_url=url, environment="test", log_level="WARNING", **overrides))
            auth = {"Authorization": f"Bearer {world['token']}"}
            answers = []
            with TestClient(create_app(c)) as client:
                for body in bodies[:20]:  # warm-up: pool filled, statements cached (not counted)
                    payload = {k: v for k, v in body.items() if k != "_case"}
                    client.post(
                        "/api/v1/contact-attempts", json={**payload, "case_id": world["cases"][-1]}, headers=auth
                    )
                cpu0, pg0, wall0 = time.process_time(), backend_cpu(c.engine), time.perf_counter()
                for body in bodies:
                    payload = {k: v for k, v in body.items() if k != "_case"}
                    payload["case_id"] = world["cases"][body["_case"]]
                    answers.append(client.post("/api/v1/contact-attempts", json=payload, headers=auth).status_code)
                cpu, pg, wall = time.process_time() - cpu0, backend_cpu(c.engine) - pg0, time.perf_counter() - wall0
            c.engine.dispose()
    n = len(bodies)
    return {
        "variant": name,
        "attempts": n,
        "allowed": answers.count(201),
        "denied": answers.count(403),
        "other": n - answers.count(201) - answers.count(403),
        "answers_hash": hash(tuple(answers)),
        "cpu_ms_per_attempt": {"process": round(cpu / n * 1000, 2), "postgresql": round(pg / n * 1000, 2)},
        "wall_ms_per_attempt": round(wall / n * 1000, 2),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--attempts", type=int, default=400)
    ap.add_argument("--borrowers", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    args = ap.parse_args()
    rng = random.Random(5)
    times, hot_times = attempt_times(), attempt_times(days=1)
    bodies = []
    for _ in range(args.attempts):
        hot = rng.random() < 0.2
        bodies.append(
            {
                "_case": rng.randrange(4) if hot else rng.randrange(4, args.borrowers - 1),
                "channel": "call" if hot or rng.random() < 0.8 else "sms",
                "recipient": {"role": "borrower"},
                "time": rng.choice(hot_times if hot else times),
            }
        )
    results = []
    for _ in range(args.rounds):  # interleaved, so that the machine's load falls on every variant alike
        for name in args.variants.split(","):
            results.append(run(name, bodies, args.borrowers))
            print(json.dumps(results[-1]), flush=True)
    if len({r["answers_hash"] for r in results}) != 1:
        sys.exit("the variants answered differently")


if __name__ == "__main__":
    main()
