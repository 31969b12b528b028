"""From clauses to contacts: one draft per (recipient, channel), each with the facts of its clauses.

A clause that names a recipient starts (or continues) that recipient's contact; a clause that
names none continues the last one ("他们给我同事打电话，说我欠钱不还": the second clause is what
was said to the colleague). A clause that only states something ("我没同意") creates no contact;
its statement applies to the description as a whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from collectguard.rules.extract.channels import find_channels
from collectguard.rules.extract.consent import Statements, find_statements
from collectguard.rules.extract.counts import VAGUE_MANY, find_counts
from collectguard.rules.extract.lending import CONTACT_LIST_REQUIRED
from collectguard.rules.extract.parties import borrower_addressed, find_parties
from collectguard.rules.extract.speech import find_speech, without_threats
from collectguard.rules.extract.times import TimeMention, find_time

__all__ = ["Draft", "Reading", "read_clauses"]

_QUOTE = re.compile(r'"([^"]{1,400})"|「([^」]{1,400})」|『([^』]{1,400})』')
_PLACEHOLDER = re.compile(r"«q(\d+)»")
_RELAY = re.compile(r"(?:让|叫|要|请|逼|催)(?:他|她|他们|她们)(?!打|发|来|上门)")
_CONTACT_VERB = re.compile(r"收到|接到|联系|打|找|通知|告诉|说|问|骚扰|催|骂|威胁|发|上门|知道|"
                           r"\b(?:call|text|messag|contact|told|tell|said|ask|reach|threat|got|receiv)")


@dataclass
class Draft:
    """One contact as read so far."""

    role: str
    channel: str | None
    source: str | None = None
    count: int = 1
    time: TimeMention | None = None
    purpose: str | None = None
    discloses: set[str] = field(default_factory=set)
    conduct: set[str] = field(default_factory=set)
    messages: list[str] = field(default_factory=list)
    attempts: int | None = None
    connected: int | None = None
    texts: int | None = None
    visitors: int | None = None
    hints: set[str] = field(default_factory=set)
    evidence: list[str] = field(default_factory=list)


@dataclass
class Reading:
    """Everything read from the clauses: the contacts and the description-wide statements."""

    drafts: list[Draft] = field(default_factory=list)
    statements: list[Statements] = field(default_factory=list)
    refused_roles: set[str] = field(default_factory=set)
    borrower_reached: bool = False


def _maxed(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def _apply(d: Draft, clause: str, quotes: list[str]) -> None:
    """Add one clause's facts to a draft."""
    sp = find_speech(clause + " " + " ".join(quotes))
    d.discloses |= sp.discloses
    d.conduct |= sp.conduct
    d.purpose = d.purpose or sp.purpose
    ch = find_channels(clause)
    d.conduct |= ch.conduct
    d.visitors = _maxed(d.visitors, ch.visitors)
    d.time = d.time or find_time(clause)
    counts = find_counts(clause)
    d.attempts = _maxed(d.attempts, counts.attempts)
    d.connected = _maxed(d.connected, counts.connected)
    d.texts = _maxed(d.texts, counts.messages)
    if VAGUE_MANY.search(clause):
        d.hints.add("history.attempts_today_same_method")
    # A threat rebuilt from the words is dropped when the quote already carries it.
    for q in [*quotes, *(s for s in sp.said if not any(s in q for q in quotes))]:
        if q not in d.messages:
            d.messages.append(q)
    if clause not in d.evidence:
        d.evidence.append(clause)


def _is_contact(clause: str, masked: str) -> bool:
    """Whether a clause without a named third party describes a contact (not only a statement)."""
    if borrower_addressed(masked) or _PLACEHOLDER.search(clause):
        return True
    ch = find_channels(clause)
    if ch.channels or ch.conduct:
        return True
    sp = find_speech(clause)
    return bool(sp.conduct) or find_counts(clause).attempts is not None


def read_clauses(clauses: list[str], quotes: list[str]) -> Reading:
    """Read normalised clauses (quoted speech replaced by ``«qN»``) into contacts and statements."""
    out = Reading()
    by_key: dict[tuple[str, str | None], Draft] = {}
    context_roles: list[str] = []
    context_channel: str | None = None
    pending_time: TimeMention | None = None
    for clause in clauses:
        clause_quotes = [quotes[int(i)] for i in _PLACEHOLDER.findall(clause)]
        plain = _PLACEHOLDER.sub(" ", clause)
        st = find_statements(plain)
        out.statements.append(st)
        parties, masked = find_parties(without_threats(plain))
        roles = [p.role for p in parties]
        channels = find_channels(plain).channels
        if "public_post" in channels and "public" not in roles:
            roles.append("public")
        third_context = [r for r in context_roles if r != "borrower"]
        if not roles and third_context and _RELAY.search(plain):
            # "让他催我还钱": the third party is asked to press the borrower; "我" is not contacted here.
            roles = third_context
        # A post only ("在我家门口贴了告示") is no contact with the borrower, though "我家" is named.
        elif borrower_addressed(masked) and "borrower" not in roles and channels != ["public_post"]:
            roles.append("borrower")
        if st.no_contact_requested:
            # "我妈让他们别再打了": the named person refused; "我告诉他们别再打了": the borrower did.
            out.refused_roles.update([r for r in roles if r != "borrower"] or ["borrower"])
        if st.reachable is True:
            out.borrower_reached = True
        statement = bool(st.reachable is not None or st.no_contact_requested or st.contact_list_consent
                         or st.third_party_consent)
        said_contact = find_speech(plain).conduct or find_time(plain) or find_counts(plain).attempts
        if statement and not said_contact and (not roles or st.third_party_consent or st.contact_list_consent):
            continue  # "我一直都能接电话", "我没同意": about the situation, not a contact
        if not roles:
            sp = find_speech(plain)
            contact = _is_contact(plain, masked)
            if not contact and not (context_roles and (sp.discloses or sp.purpose or clause_quotes)):
                # A statement only ("我没同意"), or a time said before the contact it belongs to.
                pending_time = find_time(plain) or pending_time
                continue
            roles = context_roles or ["borrower"]
        elif CONTACT_LIST_REQUIRED.search(plain) or (
                not channels and context_channel is None and not _CONTACT_VERB.search(plain)):
            # People named without any contact ("不授权通讯录就不让借"): a statement, not a contact.
            continue
        else:
            context_roles = [r for r in roles if r != "public"] or roles
        if channels:
            context_channel = next((c for c in reversed(channels) if c != "public_post"), context_channel)
        for p_role in roles:
            if p_role == "public":
                role_channels: list[str | None] = ["public_post"]
            else:
                role_channels = [c for c in channels if c != "public_post"] or [context_channel]
            party = next((p for p in parties if p.role == p_role), None)
            for channel in role_channels:
                key = (p_role, channel)
                d = by_key.get(key)
                if d is None:
                    # A draft whose channel was unknown takes the first channel said for it.
                    d = by_key.pop((p_role, None), None) if channel is not None else None
                    if d is not None:
                        d.channel = channel
                    else:
                        d = Draft(role=p_role, channel=channel)
                        out.drafts.append(d)
                    by_key[key] = d
                if party is not None:
                    d.source = d.source or party.source
                    d.count = max(d.count, party.count)
                _apply(d, plain, clause_quotes)
                d.time = d.time or pending_time
                if st.repeated and p_role != "borrower":
                    d.hints.add("recipient.no_contact_requested")
                if st.agreed_hours_hint:
                    d.hints.add("consent.agreed_hours")
        pending_time = None
    for d in out.drafts:
        reached = d.role == "borrower" and (d.connected or d.conduct or d.channel == "visit" or d.messages)
        if reached:
            out.borrower_reached = True
    return out


def split_quotes(text: str) -> tuple[str, list[str]]:
    """Replace quoted speech in normalised ``text`` by ``«qN»`` and return the quotes."""
    quotes: list[str] = []

    def keep(m: re.Match[str]) -> str:
        quotes.append(next(g for g in m.groups() if g is not None).strip())
        return f"«q{len(quotes) - 1}»"

    return _QUOTE.sub(keep, text), quotes
