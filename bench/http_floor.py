"""The floor under the attempts benchmark: what FastAPI + uvicorn cost per request with no work at all.

    .venv/bin/python bench/http_floor.py [--workers 2] [--connections 8,32] [--duration 10]

Serves a minimal FastAPI app with the same uvicorn, FastAPI and pydantic versions as collectguard
(``uvicorn --workers N``, no access log): ``POST /api/v1/contact-attempts`` validates a body of the
attempt's shape with a pydantic model and answers a small JSON document — no database, no auth, no
guard. ``wrk`` (Debian) drives it from loopback exactly as ``bench/attempts_load.py`` drives the real
endpoint. Reports requests/s, latency and the API workers' CPU milliseconds per request (``/proc``).

Why: the attempts target (≥ 1,000/s on 2 cores) leaves 2 ms of CPU per attempt for *everything* —
HTTP, the guard, the service, PostgreSQL and the load generator. This measures how much of that the
web stack alone takes, so the gap in BENCHMARKS.md is a measured one, not a guess.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from attempts_load import free_port, workers_of

APP = """import datetime as dt
from typing import Literal

from fastapi import FastAPI
from pydantic import BaseModel


class Recipient(BaseModel):
    role: str


class Attempt(BaseModel):
    case_id: int
    channel: Literal["call", "sms", "email", "visit", "im", "letter"]
    recipient: Recipient
    time: dt.datetime


app = FastAPI()


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/api/v1/contact-attempts", status_code=201)
async def attempt(body: Attempt) -> dict[str, object]:
    return {"id": body.case_id, "allowed": True, "channel": body.channel, "time": body.time.isoformat()}
"""

LUA = """
local n = 0
function request()
  n = n + 1
  local body = string.format('{"case_id":%d,"channel":"call","recipient":{"role":"borrower"},'
                             .. '"time":"2026-12-01T10:00:00+08:00"}', n)
  return wrk.format("POST", "/api/v1/contact-attempts", {["Content-Type"] = "application/json"}, body)
end
done = function(summary, latency, requests)
  io.write(string.format('WRKJSON {"requests":%d,"seconds":%.3f,"non_2xx":%d,"p50_ms":%.2f,"p99_ms":%.2f}\\n',
    summary.requests, summary.duration / 1e6, summary.errors.status,
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3))
end
"""


def _cpu(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--connections", default="8,32")
    ap.add_argument("--duration", type=int, default=10)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("the load generator is wrk: apt-get install wrk (Debian)")
    tmp = Path(tempfile.mkdtemp(prefix="cg-floor-"))
    (tmp / "floor_app.py").write_text(APP, encoding="utf-8")
    (tmp / "floor.lua").write_text(LUA, encoding="utf-8")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "uvicorn", "floor_app:app", "--app-dir", str(tmp), "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--workers", str(args.workers), "--log-level", "warning", "--no-access-log"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = []
    try:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                up = httpx.get(f"{base}/health", timeout=2).status_code == 200
                if up and len(workers_of(proc.pid)) >= args.workers:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                sys.exit("uvicorn did not start")
            time.sleep(0.3)
        time.sleep(1.0)
        pids = workers_of(proc.pid)
        for conns in (int(c) for c in args.connections.split(",")):
            before = _cpu(pids)
            wrk = ["wrk", "-t", "1", "-c", str(conns), "-d", f"{args.duration}s", "-s", str(tmp / "floor.lua"), base]
            out = subprocess.run(wrk, capture_output=True, text=True, check=True).stdout
            cpu = _cpu(pids) - before
            r = json.loads(next(line for line in out.splitlines() if line.startswith("WRKJSON "))[8:])
            r.update(
                connections=conns,
                requests_per_s=int(r["requests"] / r["seconds"]),
                api_cpu_s=round(cpu, 2),
                api_cpu_ms_per_request=round(1000 * cpu / max(r["requests"], 1), 3),
                load_average_1m=round(os.getloadavg()[0], 2),
            )
            runs.append(r)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({"bench": "http_floor", "workers": args.workers, "cpus": os.cpu_count(), "runs": runs}))


if __name__ == "__main__":
    main()
