"""Time ``collectguard costs price`` (every loan's APR, read from and written to the database); prints JSON.

    .venv/bin/python bench/costs.py --loans 1000000 --sqlite-file /tmp/cg-1m-apr.db
        # generates /tmp/cg-1m-apr.db once (bench/daily.py's portfolio; kept), then every call
        # prices a fresh copy of it
    .venv/bin/python bench/costs.py --loans 1000000 --pg-url postgresql://root@127.0.0.1:5432/postgres \\
        --pg-template cg_costs_1m
        # the same on PostgreSQL, the kept portfolio in database cg_costs_1m (drop it when done)

The portfolio is ``bench/daily.py``'s (6 installments per loan, due every 30 days, so an odd
first period and a mix of unit-periods). Generation is not measured. The command runs in a fresh
child process, in-process through the CLI's ``main`` so that its start-up counts, with timers
around the stages of ``services.costs.loan_apr_fill``: ``read`` (bulk read of a window),
``price`` (decoding what was read, then the matrix method: on a worker thread, overlapping the
others), ``scalar`` (the loans left to ``compute_apr``), ``write`` (the UPDATE) and ``rest`` (wall
less read, scalar and write: start-up, the id range query, waiting for the price of the last
window, the commit). CPU per stage is the stage's thread's CPU. Reported: wall and CPU seconds of the child
(user + system; on PostgreSQL also the server backend's CPU from /proc), peak RSS, the 1-minute
load average before and after, and a digest of the stored APRs (count, sum, and a hash of every
(id, apr)) to compare two runs or two backends.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_T0 = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _proc_cpu(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # the server runs on another machine: no figure
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child(url: str) -> dict[str, Any]:
    """``collectguard --database-url URL costs price --json`` in this process, with stage timers."""
    from sqlalchemy import create_engine, text

    from collectguard.adapters.db.engine import normalise_url
    from collectguard.cli.main import main as cli_main
    from collectguard.services import costs

    stages: dict[str, float] = {"read": 0.0, "price": 0.0, "scalar": 0.0, "write": 0.0}
    stage_cpu = dict.fromkeys(stages, 0.0)
    backend: dict[str, Any] = {}

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if name == "read" and not backend:
                info = getattr(args[0].connection().connection.driver_connection, "info", None)
                pid = getattr(info, "backend_pid", None)
                backend.update(pid=pid, cpu=_proc_cpu(pid) if pid else None)
            t, cpu = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                stages[name] += time.perf_counter() - t
                stage_cpu[name] += time.thread_time() - cpu

        return wrapper

    for name, attr in (
        ("read", "read_window"),
        ("price", "_decode_and_price"),
        ("scalar", "_scalar"),
        ("write", "write_aprs"),
    ):
        setattr(costs, attr, timed(name, getattr(costs, attr)))
    load = os.getloadavg()[0]
    try:
        cli_main(["--database-url", url, "costs", "price", "--json"])
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise
    wall = time.perf_counter() - _T0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    server = None
    if backend.get("cpu") is not None:
        after = _proc_cpu(backend["pid"])
        server = round(after - backend["cpu"], 2) if after is not None else None
    engine = create_engine(normalise_url(url))
    with engine.connect() as conn:
        digest = hashlib.sha256()
        n = total = 0
        for lid, apr in conn.execute(text("SELECT id, apr FROM loan WHERE apr IS NOT NULL ORDER BY id")):
            digest.update(f"{lid}:{apr}\n".encode())
            n, total = n + 1, total + int(apr)
    engine.dispose()
    return {
        "wall_seconds": round(wall, 2),
        "cpu_seconds": {
            "process": round(usage.ru_utime + usage.ru_stime, 2),
            "user": round(usage.ru_utime, 2),
            "system": round(usage.ru_stime, 2),
            "postgres_backend": server,
        },
        "stage_seconds": {
            **{k: round(v, 2) for k, v in stages.items()},
            "rest": round(wall - stages["read"] - stages["scalar"] - stages["write"], 2),
        },
        "stage_cpu_seconds": {
            **{k: round(v, 2) for k, v in stage_cpu.items()},
            "rest": round(usage.ru_utime + usage.ru_stime - sum(stage_cpu.values()), 2),
        },
        "note": "price runs on a worker thread while the main thread reads the next window and writes the "
        "previous one; rest = wall - read - scalar - write (start-up, the id range, waiting for "
        "price, the commit)",
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "load_average_1min": {"before": load, "after": os.getloadavg()[0]},
        "aprs": {"count": n, "sum": total, "sha256": digest.hexdigest()[:16]},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loans", type=int, default=1_000_000)
    ap.add_argument("--sqlite-file", type=Path, help="keep the generated SQLite portfolio here and reuse it")
    ap.add_argument("--pg-url", help="measure on PostgreSQL (a server URL; a database is created and dropped)")
    ap.add_argument("--pg-template", help="keep the PostgreSQL portfolio in this database and reuse it")
    ap.add_argument("--runs", type=int, default=1, help="measure this many fresh copies")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child)))
        return
    import daily  # bench/daily.py: the portfolio generator and its kept copies

    backend = "postgres" if a.pg_url else "sqlite"
    out: dict[str, Any] = {
        "benchmark": "costs price",
        "loans": a.loans,
        "backend": backend,
        "installments_per_loan": 6,
        "cpus": os.cpu_count(),
        "runs": [],
    }
    for _ in range(a.runs):
        url, cleanup = daily._database(backend, a.pg_url, a.pg_template, a.loans)
        try:
            if backend == "sqlite":
                out["generate_seconds"] = (
                    daily._reuse(a.sqlite_file, url, a.loans) if a.sqlite_file else daily.generate(url, a.loans)
                )
            elif not a.pg_template:
                out["generate_seconds"] = daily.generate(url, a.loans)
            p = subprocess.run([sys.executable, __file__, "--child", url], capture_output=True, text=True, check=False)
            if p.returncode != 0:
                raise SystemExit(f"child failed:\n{p.stderr[-3000:]}")
            lines = p.stdout.strip().splitlines()
            run = json.loads(lines[-1])
            run["counts"] = json.loads(lines[-2])
            out["runs"].append(run)
        finally:
            cleanup()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
