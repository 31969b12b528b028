"""Differential test: collectguard and the benchmark's peers (Cedar, GoRules zen) agree rule by rule.

bench/peers_guard.py times the three engines on the same stateless CN rules; these tests prove,
on 2,000 seeded events, that they compute the same thing: the same verdict and the same set of
denying rules for every event, with every compared rule firing at least once. Without the peer
packages (dev extra) the tests skip with a message; under CI=true they fail instead.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections import Counter
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
IN_CI = os.environ.get("CI", "").lower() == "true"
N, SEED = 2000, 20260402


def _need(module: str, package: str) -> None:
    if importlib.util.find_spec(module) is None:
        msg = f"{package} is not installed (pip install -e '.[dev]'): the differential test against it cannot run"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="module")
def cases():
    from peers.runner import collectguard_verdicts, peer_events, subset_guard

    events = peer_events(N, SEED)
    return events, collectguard_verdicts(subset_guard(), events)


def _assert_same(events, ours, theirs, peer: str) -> None:
    diff = [i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b]
    if diff:
        i = diff[0]
        pytest.fail(f"{peer} differs on {len(diff)} of {len(events)} events; first: {events[i]} "
                    f"collectguard={ours[i]} {peer}={theirs[i]}")


def test_every_compared_rule_fires_and_both_verdicts_occur(cases):
    from peers.runner import SUBSET

    _, ours = cases
    fired = Counter(rule for _, rules in ours for rule in rules)
    assert set(fired) == set(SUBSET), f"never fired: {sorted(set(SUBSET) - set(fired))}"
    verdicts = Counter(allowed for allowed, _ in ours)
    assert verdicts[True] > 0 and verdicts[False] > 0


def test_cedar_gives_the_same_verdicts_and_rules(cases):
    _need("cedarpy", "cedarpy")
    from peers.runner import CedarPeer

    events, ours = cases
    _assert_same(events, ours, CedarPeer().verdicts(events), "cedarpy")


def test_zen_gives_the_same_verdicts_and_rules(cases):
    _need("zen", "zen-engine")
    from peers.runner import ZenPeer

    events, ours = cases
    _assert_same(events, ours, ZenPeer().verdicts(events), "zen-engine")


def test_the_comparison_would_notice_a_wrong_policy(cases, tmp_path):
    # A Cedar quiet-hours policy that opens an hour early (07:00 instead of 08:00) must be caught.
    _need("cedarpy", "cedarpy")
    from peers.runner import CEDAR_POLICIES, CedarPeer

    events, ours = cases
    wrong = tmp_path / "wrong.cedar"
    wrong.write_text(CEDAR_POLICIES.read_text(encoding="utf-8").replace("28800", "25200"), encoding="utf-8")
    theirs = CedarPeer(wrong).verdicts(events)
    assert any(a != b for a, b in zip(ours, theirs, strict=True))
