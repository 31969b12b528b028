"""The guard against two peer engines on the same stateless CN rules: Cedar and GoRules zen-engine.

    .venv/bin/python bench/peers_guard.py [--n 50000] [--seed 7] [--batch 1000] [--repeat 3]

Generates N seeded CN events (bench/guard.py's generator without the message, see
``bench/peers/runner.py``), then **first proves** that collectguard (compiled from the subset of
``cn.yaml`` both peers can express), the Cedar policies (``bench/peers/cn_stateless.cedar``) and
the zen decision table (``bench/peers/cn_stateless.jdm.json``) give the same verdict *and* the same
denying rules on every one of the N events — it exits 1 otherwise, before timing anything.

Timed, each from the same JSON Lines bytes to a verdict, best of ``--repeat``:
* collectguard in process: ``Guard.check_stream`` (validate + judge + serialise the decision),
  the subset pack, and for reference the whole CN pack (a superset of the rules);
* collectguard whole process: ``collectguard check FILE > /dev/null`` (every shipped pack, start-up
  included);
* cedarpy: ``json.loads`` + flattening to a context + ``is_authorized_batch`` in batches of
  ``--batch`` against a ``PolicySet`` parsed once (and evaluation alone, requests prebuilt);
* zen-engine: ``json.loads`` + flattening + ``ZenDecision.evaluate`` per event (and evaluation alone).
Wall time and CPU time (``time.process_time``) are both reported: on a shared 2-core machine the
CPU figure is the steadier one, and ``load_average_1m`` says how busy the machine was.
Prints one JSON object. Target: collectguard in process >= 3x cedarpy.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from peers.runner import (  # noqa: E402
    NOT_EXPRESSIBLE,
    SUBSET,
    CedarPeer,
    ZenPeer,
    collectguard_verdicts,
    peer_context,
    peer_events,
    subset_guard,
)


def _timed(fn: Callable[[], int], repeat: int) -> dict[str, Any]:
    """Best wall time of ``repeat`` runs of ``fn`` (which returns how many it decided), with its CPU time."""
    best: tuple[float, float, int] | None = None
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        n = fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if best is None or wall < best[0]:
            best = (wall, cpu, n)
    assert best is not None
    wall, cpu, n = best
    return {"seconds": round(wall, 3), "decisions_per_s": round(n / wall),
            "cpu_seconds": round(cpu, 3), "decisions_per_cpu_s": round(n / max(cpu, 1e-9))}


def _differential(events: list[dict[str, Any]], cedar: CedarPeer, zen: ZenPeer) -> dict[str, Any]:
    ours = collectguard_verdicts(subset_guard(), events)
    out: dict[str, Any] = {"events": len(events), "deny_share": round(sum(not a for a, _ in ours) / len(ours), 3)}
    for name, theirs in (("cedarpy", cedar.verdicts(events)), ("zen_engine", zen.verdicts(events))):
        diff = [i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b]
        out[name] = {"identical_verdicts": not any(ours[i][0] != theirs[i][0] for i in diff),
                     "identical_rules": not diff, "first_difference": diff[0] if diff else None}
    return out


def _whole_process(path: Path, n: int, repeat: int) -> dict[str, Any]:
    exe = Path(sys.executable).with_name("collectguard")
    cmd = [str(exe), "check", str(path)]
    best: tuple[float, float] | None = None
    for _ in range(repeat):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
        dt = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)  # the process and its workers
        if best is None or dt < best[0]:
            best = (dt, cpu)
    assert best is not None
    return {"command": f"collectguard check {path.name}", "packs": "all shipped (CN pack in full)",
            "seconds": round(best[0], 3), "decisions_per_s": round(n / best[0]),
            "cpu_seconds": round(best[1], 3), "decisions_per_cpu_s": round(n / best[1])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--batch", type=int, default=1000, help="requests per is_authorized_batch call")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/out/peer_events.jsonl")
    args = ap.parse_args()

    from collectguard.rules import Guard

    events = peer_events(args.n, args.seed)
    lines = [json.dumps(e, ensure_ascii=False).encode() for e in events]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(b"\n".join(lines) + b"\n")
    cedar, zen = CedarPeer(), ZenPeer()
    diff = _differential(events, cedar, zen)
    if not (diff["cedarpy"]["identical_rules"] and diff["zen_engine"]["identical_rules"]):
        print(json.dumps({"error": "the engines disagree; nothing timed", "differential": diff}))
        sys.exit(1)

    sub, full = subset_guard(), Guard.default()
    loads = json.loads

    def cg(guard: Any) -> Callable[[], int]:
        return lambda: sum(1 for _ in guard.check_stream(lines))

    def cedar_all() -> int:
        reqs = [{**CedarPeer.REQUEST, "context": peer_context(loads(raw))} for raw in lines]
        return sum(len(cedar.allowed(reqs[i:i + args.batch])) for i in range(0, len(reqs), args.batch))

    prebuilt = [{**CedarPeer.REQUEST, "context": peer_context(e)} for e in events]

    def cedar_eval() -> int:
        return sum(len(cedar.allowed(prebuilt[i:i + args.batch])) for i in range(0, len(prebuilt), args.batch))

    evaluate = zen.decision.evaluate
    contexts = [peer_context(e) for e in events]

    def zen_all() -> int:
        return sum(1 for raw in lines if evaluate(peer_context(loads(raw))) is not None)

    def zen_eval() -> int:
        return sum(1 for ctx in contexts if evaluate(ctx) is not None)

    r = args.repeat
    result: dict[str, Any] = {
        "events": args.n, "seed": args.seed, "cpus": os.cpu_count(),
        "rules_compared": list(SUBSET), "not_expressible_in_peers": NOT_EXPRESSIBLE,
        "differential": diff,
        "collectguard_in_process": {"subset_pack": _timed(cg(sub), r), "full_cn_pack": _timed(cg(full), r)},
        "collectguard_whole_process": _whole_process(args.out, args.n, r),
        "cedarpy": {"batch": args.batch, "from_json": _timed(cedar_all, r), "evaluation_only": _timed(cedar_eval, r)},
        "zen_engine": {"from_json": _timed(zen_all, r), "evaluation_only": _timed(zen_eval, r)},
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    ours = result["collectguard_in_process"]["subset_pack"]
    for peer in ("cedarpy", "zen_engine"):
        theirs = result[peer]["from_json"]
        result[f"speedup_vs_{peer}"] = {
            "wall": round(ours["decisions_per_s"] / theirs["decisions_per_s"], 2),
            "cpu": round(ours["decisions_per_cpu_s"] / theirs["decisions_per_cpu_s"], 2)}
    result["target"] = "collectguard in process >= 3x cedarpy"
    result["target_met"] = result["speedup_vs_cedarpy"]["cpu"] >= 3
    print(json.dumps(result))


if __name__ == "__main__":
    main()
