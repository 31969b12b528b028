"""Golden scenarios: every YAML file under ``collectguard/policy/scenarios/`` (all jurisdictions).

A scenario file is a mapping with a ``scenarios`` list (or the list itself). Each scenario has
``id``, ``title_zh``, ``title_en``, ``event`` (a collection event, DESIGN §5), ``expect``
(``allow`` | ``deny``) and optionally:
  citations_include  every id must appear among the violations' citations, equal or refined
                     (``US:REGF:1006.14`` is met by ``US:REGF:1006.14(b)(2)``)
  rules_include      rule ids that must be among the violations
  rules_exclude      rule ids that must not be among the violations
  warnings_include   rule ids that must be among the warnings
  lint_include       lint categories that must be found
The scenario id is the test id, so a failure names the case a compliance officer wrote.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Any

import pytest

from collectguard.domain.event import parse_event_json
from collectguard.policy.loader import scenario_files
from collectguard.rules import Guard

REQUIRED = {"id", "title_zh", "title_en", "event", "expect"}
OPTIONAL = {"citations_include", "rules_include", "rules_exclude", "warnings_include", "lint_include", "note"}


def _iso(o: Any) -> str:
    if isinstance(o, dt.date | dt.datetime):
        return o.isoformat()
    raise TypeError(f"cannot encode {type(o).__name__}")


def _load() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name, doc in scenario_files():
        items = doc.get("scenarios") if isinstance(doc, dict) else doc
        assert isinstance(items, list), f"{name}: expected a list of scenarios (or {{scenarios: [...]}})"
        out += [(name, sc) for sc in items]
    return out


SCENARIOS = _load()


def cited(expected: str, got: set[str]) -> bool:
    """``expected`` appears among ``got`` as itself or refined (``X:Y:1`` by ``X:Y:1(b)``)."""
    return any(g == expected or g.startswith(expected + ":") or g.startswith(expected + "(") for g in got)


@pytest.fixture(scope="module")
def guard() -> Guard:
    return Guard.default()


def test_scenario_ids_are_unique() -> None:
    dupes = [i for i, n in Counter(sc["id"] for _, sc in SCENARIOS).items() if n > 1]
    assert not dupes, f"duplicate scenario ids: {dupes}"


def test_there_are_at_least_90_cn_scenarios() -> None:
    assert sum(1 for name, _ in SCENARIOS if name.startswith("cn/")) >= 90


@pytest.mark.parametrize(("source", "sc"), SCENARIOS, ids=[sc["id"] for _, sc in SCENARIOS])
def test_scenario(source: str, sc: dict[str, Any], guard: Guard) -> None:
    assert REQUIRED <= set(sc), f"{source}: {sc.get('id')} lacks {sorted(REQUIRED - set(sc))}"
    assert not set(sc) - REQUIRED - OPTIONAL, f"{source}: unknown keys {sorted(set(sc) - REQUIRED - OPTIONAL)}"
    assert sc["expect"] in ("allow", "deny")
    # Through JSON, as the CLI and the API receive it.
    event = parse_event_json(json.dumps(sc["event"], default=_iso, ensure_ascii=False))
    decision = guard.check(event)
    rules = {v.rule for v in decision.violations}
    summary = f"{source}: {sc['id']}: got {decision.verdict} {sorted(rules)}"
    assert decision.verdict == sc["expect"], summary
    if decision.verdict == "deny":
        assert decision.violations, summary
    citations = {c for v in decision.violations for c in v.citations}
    for want in sc.get("citations_include") or []:
        assert cited(want, citations), f"{summary}: {want} not among {sorted(citations)}"
    for rule in sc.get("rules_include") or []:
        assert rule in rules, summary
    for rule in sc.get("rules_exclude") or []:
        assert rule not in rules, summary
    warnings = {w.rule for w in decision.warnings}
    for rule in sc.get("warnings_include") or []:
        assert rule in warnings, f"{summary}: warnings {sorted(warnings)}"
    categories = {h.category for h in decision.lint}
    for cat in sc.get("lint_include") or []:
        assert cat in categories, f"{summary}: lint {sorted(categories)}"
