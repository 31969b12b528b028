"""Free-text self-check cases (tests/data/assess_cases.yaml), run through the whole service.

Each case is a complaint as people type it, with the verdict the self-check must give; see the
file's header for the checks. The case id is the test id.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from collectguard.rules import Guard
from collectguard.services.assess import assessment_from_text

DATA = Path(__file__).parent.parent / "data" / "assess_cases.yaml"
NOW = dt.datetime(2026, 4, 7, 4, 0, tzinfo=dt.UTC)  # 12:00 in Beijing
CASES: list[dict[str, Any]] = yaml.safe_load(DATA.read_text(encoding="utf-8"))["cases"]
KEYS = {"id", "text", "expect", "jurisdiction", "rules_include", "citations_include", "missing_include",
        "facts_include", "lending", "notes_include"}


def get(d: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d


def cited(expected: str, got: set[str]) -> bool:
    return any(g == expected or g.startswith((expected + ":", expected + "(")) for g in got)


def test_the_case_file() -> None:
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 40
    assert all(set(c) <= KEYS and c["expect"] in ("unlawful", "lawful", "undetermined") for c in CASES)
    verdicts = {c["expect"] for c in CASES}
    languages = {c["id"].split("-")[0] for c in CASES}
    assert verdicts == {"unlawful", "lawful", "undetermined"} and languages == {"zh", "zht", "en"}


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case(case: dict[str, Any]) -> None:
    a = assessment_from_text(text=case["text"], jurisdiction=case.get("jurisdiction"), now=NOW)
    if a.jurisdiction not in Guard.default().packs:
        # No rule pack for this jurisdiction yet: nothing can be judged, and the answer says so.
        assert a.verdict == "undetermined" and "engine.no_pack" in {n.code for n in a.notes}
    else:
        assert a.verdict == case["expect"], [f.rule for f in a.findings]
        rules = {f.rule for f in a.findings}
        citations = {c for f in a.findings for c in f.citations}
        for rule in case.get("rules_include", []):
            assert rule in rules, (rule, sorted(rules))
        for cid in case.get("citations_include", []):
            assert cited(cid, citations), (cid, sorted(citations))
        missing = {m.field for m in a.missing_facts}
        for field in case.get("missing_include", []):
            assert field in missing, (field, sorted(missing))
        if a.verdict == "unlawful":
            assert a.consequences and a.next_steps and a.missing_facts == ()
    for wanted in case.get("facts_include", []):
        assert any(all(get(e.facts, k) == v for k, v in wanted.items()) for e in a.events), (
            wanted, [e.facts for e in a.events])
    for key, value in case.get("lending", {}).items():
        assert a.lending is not None and a.lending[key] == value, (key, a.lending)
    notes = {n.code for n in a.notes}
    for code in case.get("notes_include", []):
        assert code in notes, (code, notes)
