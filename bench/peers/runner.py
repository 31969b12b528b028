"""The guard's stateless CN rules in two peer engines, and the events they are compared on.

Used by ``bench/peers_guard.py`` (timing) and ``tests/unit/test_peers_differential.py`` (proof
that the three engines agree, rule by rule, before anything is timed).

* ``SUBSET``: the CN pack rules that are stateless facts-in, verdict-out and expressible in both
  peers: quiet hours, the connected-call and same-number caps, the third-party gate (precondition,
  purpose, disclosure), contact-list source, public posts, visitors, the conduct bans, outsourcing.
  ``subset_guard()`` is collectguard compiled from exactly those rules of ``cn.yaml``.
* Left out, because a peer cannot express it (the message lint — Aho-Corasick over normalised
  Chinese text, negations, evasions — feeds ``conduct`` and ``discloses``): events carry no
  ``message``; ``cn.conduct.disclosure_threat`` (only the lint produces that conduct) goes with it.
  The remaining rules (illegal debt, paid/disputed debt, consent withdrawal, purchased data,
  refusals, mass messages, warnings) are outside the listed subset and are not compared.
* ``peer_events``: bench/guard.py's generator, with the message replaced by reported ``conduct``
  and ``discloses`` (so the conduct and disclosure rules fire) and some dates moved to 2022–2025
  and some agreed hours withdrawn (so every effective date and branch is exercised).
* ``peer_context``: the event flattened into the peers' context — parsing and defaults only
  (time -> local date and seconds, absent counters -> 0); every rule condition is in the peers.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # bench/: the event generator of bench/guard.py
from guard import make_event  # noqa: E402

CEDAR_POLICIES = HERE / "cn_stateless.cedar"
ZEN_TABLE = HERE / "cn_stateless.jdm.json"
SUBSET = (
    "cn.quiet_hours", "cn.connected_calls_cap", "cn.attempts_same_number_cap", "cn.third_party.purpose",
    "cn.third_party.precondition", "cn.third_party.disclosure", "cn.contact_list_source", "cn.public_post",
    "cn.visit_min_collectors", "cn.conduct.threat", "cn.conduct.insult", "cn.conduct.violence",
    "cn.conduct.impersonate_authority", "cn.conduct.false_legal_claim", "cn.conduct.fake_documents",
    "cn.conduct.extra_fees", "cn.conduct.induce_borrowing", "cn.conduct.restrict_liberty",
    "cn.conduct.enter_home", "cn.conduct.stalking", "cn.outsourcing.notice", "cn.outsourcing.contract",
)
NOT_EXPRESSIBLE = {
    "message lint": "Aho-Corasick over OpenCC-normalised text with negators and evasions; "
                    "events are compared without `message`",
    "cn.conduct.disclosure_threat": "only the message lint produces this conduct",
}
CONDUCT = ("threat", "insult", "violence", "impersonate_authority", "false_legal_claim", "fake_documents",
           "stalking", "restrict_liberty", "enter_home", "extra_fees", "induce_borrowing")
DISCLOSES = ("debt_existence", "debt_amount", "overdue_dates", "personal_info")
Verdict = tuple[bool, frozenset[str]]  # (allowed, the rules that denied)


def peer_event(rng: random.Random) -> dict[str, Any]:
    """One random CN event without a message (see the module docstring)."""
    ev = make_event(rng)
    ev.pop("message", None)
    if rng.random() < 0.25:
        ev["conduct"] = rng.sample(CONDUCT, rng.randint(1, 2))
    if rng.random() < 0.2:
        ev["discloses"] = rng.sample(DISCLOSES, rng.randint(1, 2))
    if rng.random() < 0.15:  # before 2026: the earlier effective dates (2023-03-01, 2025-02-28) count
        ev["time"] = f"{rng.randint(2022, 2025)}{ev['time'][4:]}"
    consent = ev.get("consent")
    if isinstance(consent, dict) and rng.random() < 0.3:
        consent["withdrawn"] = ["agreed_hours"]
    if rng.random() < 0.02:
        ev["recipient"] = {"role": "public"}
    return ev


def peer_events(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` seeded events (same seed, same events)."""
    rng = random.Random(seed)
    return [peer_event(rng) for _ in range(n)]


def _secs(hhmm: str) -> int:
    return int(hhmm[:2]) * 3600 + int(hhmm[3:5]) * 60


def peer_context(ev: dict[str, Any]) -> dict[str, Any]:
    """The event's facts as the peers read them: parsed and defaulted, no rule logic."""
    t = dt.datetime.fromisoformat(ev["time"])
    rec, hist = ev["recipient"], ev.get("history") or {}
    col, consent = ev.get("collector") or {}, ev.get("consent") or {}
    ctx: dict[str, Any] = {
        "channel": ev["channel"], "role": rec["role"], "purpose": ev.get("purpose", "collect"),
        "day": t.year * 10000 + t.month * 100 + t.day, "tod": t.hour * 3600 + t.minute * 60 + t.second,
        "withdrawn": consent.get("withdrawn", []),
        "connected_calls": hist.get("connected_calls_today", 0),
        "attempts_same": hist.get("attempts_today_same_method", 0),
        "unreachable": hist.get("borrower_unreachable", False),
        "conduct": ev.get("conduct", []), "discloses": ev.get("discloses", []),
        "collector_kind": col.get("kind", "lender"), "notified": col.get("outsourcing_notified", False),
        "contract": col.get("processing_contract", False),
    }
    if rec.get("source") is not None:
        ctx["source"] = rec["source"]
    if col.get("visitors") is not None:
        ctx["visitors"] = col["visitors"]
    hours = consent.get("agreed_hours")
    if hours:
        ctx["agreed_from"], ctx["agreed_until"] = _secs(hours[:5]), _secs(hours[6:])
    return ctx


def subset_guard() -> Any:
    """collectguard compiled from the ``SUBSET`` rules of the shipped CN pack, nothing else."""
    from collectguard.policy import loader
    from collectguard.rules import Guard, compile_pack

    spec = loader.load_pack("CN")
    sub = spec.model_copy(update={"rules": tuple(r for r in spec.rules if r.id in SUBSET)})
    missing = set(SUBSET) - {r.id for r in sub.rules}
    if missing:
        raise LookupError(f"rules not in cn.yaml: {sorted(missing)}")
    return Guard([compile_pack(sub, {n: loader.load_lexicon(n) for n in sub.lexicons})])


def collectguard_verdicts(guard: Any, events: Iterable[dict[str, Any]]) -> list[Verdict]:
    """collectguard's (allowed, denying rules) per event, through its JSON Lines path."""
    lines = [json.dumps(e, ensure_ascii=False) for e in events]
    out = []
    for text in guard.check_stream(lines):
        d = json.loads(text)
        out.append((d["verdict"] == "allow", frozenset(v["rule"] for v in d["violations"])))
    return out


class CedarPeer:
    """The Cedar policies, parsed once; requests judged in batches with ``is_authorized_batch``."""

    REQUEST: ClassVar[dict[str, str]] = {
        "principal": 'Collector::"c"', "action": 'Action::"contact"', "resource": 'Recipient::"r"'}

    def __init__(self, path: Path = CEDAR_POLICIES) -> None:
        import cedarpy

        self._cedarpy = cedarpy
        text = path.read_text(encoding="utf-8")
        self.policies = cedarpy.PolicySet.from_str(text)
        # cedarpy names policies policy0, policy1, … in file order; @id carries the pack's rule id.
        self.ids = re.findall(r'^@id\("([^"]+)"\)', text, flags=re.MULTILINE)
        self.entities = cedarpy.Entities.from_json_str("[]") if hasattr(cedarpy, "Entities") else []

    def requests(self, events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**self.REQUEST, "context": peer_context(e)} for e in events]

    def allowed(self, requests: list[dict[str, Any]]) -> list[bool]:
        """Verdicts only: the timed path."""
        return [r.allowed for r in self._cedarpy.is_authorized_batch(requests, self.policies, self.entities)]

    def verdicts(self, events: Sequence[dict[str, Any]]) -> list[Verdict]:
        results = self._cedarpy.is_authorized_batch(self.requests(events), self.policies, self.entities)
        out = []
        for r in results:
            if r.diagnostics.errors:
                raise RuntimeError(f"cedar evaluation error: {r.diagnostics.errors}")
            rules = frozenset(self.ids[int(p.removeprefix("policy"))] for p in r.diagnostics.reasons)
            out.append((r.allowed, frozenset() if r.allowed else rules))
        return out


class ZenPeer:
    """The GoRules JDM decision table (hit policy ``collect``): each event evaluated on its own."""

    def __init__(self, path: Path = ZEN_TABLE) -> None:
        import zen

        self.decision = zen.ZenEngine().create_decision(path.read_text(encoding="utf-8"))

    def violated(self, ctx: dict[str, Any]) -> list[str]:
        return [row["rule"] for row in self.decision.evaluate(ctx)["result"]]

    def verdicts(self, events: Iterable[dict[str, Any]]) -> list[Verdict]:
        out = []
        for e in events:
            rules = frozenset(self.violated(peer_context(e)))
            out.append((not rules, rules))
        return out
