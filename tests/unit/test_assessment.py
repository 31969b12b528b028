"""The assessment of a past contact (domain/assessment.py): findings, counterfactual probing, data."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from collectguard.domain.assessment import PROBES, Case, assess_cases, practice_finding, stated_paths
from collectguard.domain.event import CollectionEvent, Decision, Violation, parse_event
from collectguard.policy.assess import load_catalogue
from collectguard.policy.loader import load_pack
from collectguard.rules import Guard
from collectguard.services.assess import assessment_from_event

CATALOGUE_MD = Path("/work/shared/law/CATALOGUE.md")
T = "2026-04-07T14:00:00+08:00"


def event(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"jurisdiction": "CN", "channel": "call", "time": T, "recipient": {"role": "borrower"}}
    return base | extra


def run(cases: list[Case], check: Any = None, **kw: Any) -> Any:
    return assess_cases(cases, check=check or Guard.default().check, catalogue=load_catalogue(),
                        jurisdiction="CN", **kw)


# ---- structured events through the real guard ------------------------------------------------------

def test_a_night_call_is_unlawful_with_its_citations_and_consequences() -> None:
    a = assessment_from_event(event(time="2026-04-07T23:30:00+08:00"))
    assert a.verdict == "unlawful" and [f.rule for f in a.findings] == ["cn.quiet_hours"]
    assert set(a.findings[0].citations) == {"CN:GBT45251", "CN:CBA2026"}
    assert a.missing_facts == () and a.facts["time"] == "2026-04-07T23:30:00+08:00"
    assert {c["id"] for c in a.consequences} == {"civil.cc1033", "admin.regulator"}
    assert "cn.complain_12378" in {s["id"] for s in a.next_steps}


def test_a_daytime_call_to_the_borrower_is_lawful() -> None:
    a = assessment_from_event(event())
    assert a.verdict == "lawful" and a.findings == () and a.consequences == ()
    assert [s["id"] for s in a.next_steps] == ["cn.evidence", "cn.lawful_options"]


def test_third_party_contact_without_borrower_unreachable_is_undetermined() -> None:
    ev = event(purpose="locate", recipient={"role": "emergency_contact", "source": "borrower_designated"})
    a = assessment_from_event(ev)
    assert a.verdict == "undetermined" and a.findings == ()
    assert [m.field for m in a.missing_facts] == ["history.borrower_unreachable"]
    assert a.missing_facts[0].question_zh and a.missing_facts[0].question_en
    assert [f.rule for f in a.possible_findings] == ["cn.third_party.precondition"]
    # Stated either way, the verdict follows.
    reachable = assessment_from_event(ev | {"history": {"borrower_unreachable": False}})
    unreachable = assessment_from_event(ev | {"history": {"borrower_unreachable": True}})
    assert (reachable.verdict, unreachable.verdict) == ("unlawful", "lawful")


def test_a_certain_finding_decides_whatever_is_unknown() -> None:
    ev = event(recipient={"role": "contact_list_entry", "source": "contact_list", "count": 40}, channel="sms",
               discloses=["debt_existence"])
    a = assessment_from_event(ev)
    assert a.verdict == "unlawful" and a.missing_facts == ()
    rules = {f.rule for f in a.findings}
    assert {"cn.contact_list_source", "cn.third_party.disclosure", "cn.mass_message"} <= rules
    # The precondition breach depends on the unknown reachability: not certain, so not a finding.
    assert "cn.third_party.precondition" not in rules
    assert {"criminal.cl253_1", "admin.pipl66", "civil.pipl69"} <= {c["id"] for c in a.consequences}


def test_a_structured_visit_with_unknown_visitors_asks_for_them() -> None:
    a = assessment_from_event(event(channel="visit"))
    assert a.verdict == "undetermined" and [m.field for m in a.missing_facts] == ["collector.visitors"]
    assert assessment_from_event(event(channel="visit", collector={"visitors": 2})).verdict == "lawful"


def test_platform_policy_rules_are_notes_not_findings() -> None:
    a = assessment_from_event(event(debt={"status": "disputed"}))
    assert a.verdict == "lawful" and [n.code for n in a.notes] == ["cn.debt.disputed"]


def test_a_jurisdiction_without_a_pack_cannot_be_judged() -> None:
    guard = Guard.from_packs(["CN"])
    ev = parse_event(event(jurisdiction="US"))
    a = assess_cases([Case(ev, stated_paths(event(jurisdiction="US")))], check=guard.check,
                     catalogue=load_catalogue(), jurisdiction="US")
    assert a.verdict == "undetermined" and [n.code for n in a.notes] == ["engine.no_pack"]


# ---- counterfactual probing with a fake guard --------------------------------------------------------

def fake(deny_if: Any) -> Any:
    v = Violation(rule="cn.fake", citations=("CN:PIPL:10",), message_zh="假", message_en="fake")

    def check(ev: CollectionEvent) -> Decision:
        return Decision(verdict="deny", pack="CN", pack_version="t", violations=(v,)) if deny_if(ev) else \
            Decision(verdict="allow", pack="CN", pack_version="t")

    return check


THIRD = parse_event(event(recipient={"role": "relative"}))


def test_a_fact_is_missing_only_if_it_flips_the_verdict() -> None:
    check = fake(lambda ev: not ev.history.borrower_unreachable)
    a = run([Case(THIRD, frozenset({"jurisdiction", "channel", "time", "recipient.role"}))], check)
    assert a.verdict == "undetermined" and [m.field for m in a.missing_facts] == ["history.borrower_unreachable"]
    stated = run([Case(THIRD, frozenset({"history.borrower_unreachable", "time"}))], check)
    assert stated.verdict == "unlawful" and stated.findings[0].events == (0,)


def test_a_fact_that_changes_nothing_is_not_asked() -> None:
    a = run([Case(THIRD, frozenset({"time"}))], fake(lambda ev: False))
    assert a.verdict == "lawful" and a.missing_facts == ()
    assert a.events[0].unknown  # several facts were probed, none mattered


def test_presumed_facts_are_probed_only_when_hinted() -> None:
    check = fake(lambda ev: ev.recipient.no_contact_requested)
    stated = frozenset({"time", "history.borrower_unreachable", "purpose", "recipient.source"})
    assert run([Case(THIRD, stated)], check).verdict == "lawful"
    hinted = run([Case(THIRD, stated, hints=frozenset({"recipient.no_contact_requested"}))], check)
    assert [m.field for m in hinted.missing_facts] == ["recipient.no_contact_requested"]


def test_unknown_time_is_probed_day_and_night() -> None:
    ev = parse_event(event())
    assert [m.field for m in run([Case(ev, frozenset())]).missing_facts] == ["time"]
    assert run([Case(ev, frozenset({"time"}))]).verdict == "lawful"


def test_several_contacts_merge_their_findings() -> None:
    night = parse_event(event(time="2026-04-07T23:00:00+08:00"))
    a = run([Case(night, frozenset({"time"})), Case(night, frozenset({"time"})), Case(parse_event(event()),
                                                                                  frozenset({"time"}))])
    assert [(f.rule, f.events) for f in a.findings] == [("cn.quiet_hours", (0, 1))]
    assert [e.verdict for e in a.events] == ["unlawful", "unlawful", "lawful"]


def test_practice_findings_and_nothing_described() -> None:
    catalogue = load_catalogue()
    a = run([], practices=[practice_finding(catalogue, "cn.practice.contact_list_required")])
    assert a.verdict == "unlawful" and a.findings[0].citations == ("CN:PIPL:16", "CN:PIPL:6", "CN:NECPI2021")
    empty = run([])
    assert empty.verdict == "undetermined"
    assert [m.field for m in empty.missing_facts] == ["recipient.role", "channel", "time"]


def test_stated_paths() -> None:
    assert stated_paths({"a": 1, "b": {"c": 2, "d": {}}, "e": {}, "f": [1]}) == {"a", "b.c", "f"}


def test_facts_keep_stated_defaults() -> None:
    a = assessment_from_event(event(purpose="collect", recipient={"role": "borrower", "count": 1}))
    assert a.facts["purpose"] == "collect" and a.facts["recipient"] == {"role": "borrower", "count": 1}


# ---- the data ----------------------------------------------------------------------------------------

def test_every_legal_deny_rule_of_the_cn_pack_is_explained_and_mapped() -> None:
    catalogue = load_catalogue()
    for rule in load_pack("CN").rules:
        if rule.effect == "deny" and rule.verification != "policy":
            assert rule.id in catalogue.rules, rule.id
            assert rule.id in catalogue.by_rule, rule.id


def test_every_probe_has_a_question() -> None:
    questions = load_catalogue().questions
    for field in [p.field for p in PROBES] + ["recipient.role", "channel"]:
        assert field in questions, field


def test_citations_have_names_and_every_cited_cn_article_has_a_text() -> None:
    catalogue = load_catalogue()
    cited = {c for r in load_pack("CN").rules for c in (x.id for x in r.citations)}
    cited |= {c for x in catalogue.consequences.values() for c in x.citations}
    cited |= {c for x in catalogue.steps for c in x.citations}
    for cid in cited:
        assert catalogue.citation_label(cid) != cid, cid
        if cid.startswith("CN:"):
            assert catalogue.citation_text(cid) is not None, cid
    assert catalogue.citation_label("CN:CL:253-1") == "《中华人民共和国刑法》第253条之一"
    assert catalogue.citation_label("CN:PIPL:10", "en") == "Personal Information Protection Law (PIPL) art. 10"


@pytest.mark.skipif(not CATALOGUE_MD.exists(), reason="shared/law/CATALOGUE.md is not available here")
def test_quoted_texts_are_the_catalogues_own_words() -> None:
    source = re.sub(r"\s|\*", "", CATALOGUE_MD.read_text(encoding="utf-8"))  # without markdown emphasis
    for key, text in load_catalogue().texts.items():
        if not text.quoted:
            continue
        if key.startswith(("regf.", "fdcpa.")):  # the US quotes are the English text
            for piece in text.en.split("…"):
                assert re.sub(r"\s", "", piece.strip(" .,")) in source, (key, piece)
            continue
        for piece in re.split(r"……|…|（[^）]*）|“|”|——", text.zh):
            piece = re.sub(r"\s", "", piece).strip("。；，")
            if len(piece) >= 8:
                assert piece in source, (key, piece)
