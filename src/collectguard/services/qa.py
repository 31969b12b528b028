"""QA (质检) use cases: judge and store transcripts, the human-review queue, reviews, scorecards.

- ``qa_results_store`` stores each QA run with its audit record; the transcript is kept only
  encrypted. An import is idempotent: the same transcript (canonical JSON, SHA-256) for the same
  tenant returns the stored result instead of a second row.
- Sampling for review: every result with violations, plus a random ``SAMPLE_RATE`` of the clean
  ones. The draw is seeded and depends only on the seed and the transcript's digest, so it is
  reproducible, the same in every process and independent of import order.
- Scorecards per collector (``collector.id`` of the transcripts): calls checked, violations per
  100 calls, average automatic and human review scores.

The ``*_as`` functions are the API's entry points: they check ``qa.run`` and open the unit of work.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from collectguard.adapters.crypto import PiiCipher
from collectguard.adapters.db.models import Case
from collectguard.adapters.db.models_qa import QaResultRow, QaReviewRow
from collectguard.bootstrap import Container
from collectguard.domain.transcript import QaResult, Transcript, parse_transcript
from collectguard.errors import BadInput, NotFound
from collectguard.rules.qa import qa_check
from collectguard.services.audit import audit_append, canonical_json
from collectguard.services.authz import Principal, ensure_visible, require

__all__ = [
    "MAX_BATCH",
    "SAMPLE_RATE",
    "SAMPLE_SEED",
    "qa_queue_as",
    "qa_queue_list",
    "qa_result_read",
    "qa_result_read_as",
    "qa_results_store",
    "qa_review_as",
    "qa_review_create",
    "qa_run_as",
    "qa_sampled",
    "qa_scorecards",
    "qa_scorecards_as",
    "transcripts_parse",
]

SAMPLE_RATE = 0.05  # share of clean calls drawn for human review
SAMPLE_SEED = "collectguard-qa-1"  # change it to draw a different (still reproducible) sample
MAX_BATCH = 1000  # transcripts per API request
_SEVERITY_RANK = case({"critical": 0, "major": 1, "minor": 2}, value=QaResultRow.severity, else_=3)


def transcripts_parse(body: Any) -> tuple[list[Transcript], bool]:
    """A decoded JSON body -> (transcripts, whether it was a single object); ``BadInput`` naming the
    index and field (``2.turns.0.speaker``) of the first bad transcript of a list."""
    if isinstance(body, dict):
        return [parse_transcript(body)], True
    if not isinstance(body, list) or not body:
        raise BadInput("expected a transcript (JSON object) or a non-empty list of them", field="body")
    if len(body) > MAX_BATCH:
        raise BadInput(f"at most {MAX_BATCH} transcripts per request", field="body")
    return [parse_transcript(obj, prefix=str(i)) for i, obj in enumerate(body)], False


def transcript_digest(tr: Transcript) -> tuple[str, str]:
    """(canonical JSON, its SHA-256): equal for transcripts that differ only in spelled-out defaults."""
    text = canonical_json(tr.model_dump(mode="json", exclude_defaults=True))
    return text, hashlib.sha256(text.encode("utf-8")).hexdigest()


def qa_sampled(result: QaResult, digest: str, *, rate: float = SAMPLE_RATE, seed: str = SAMPLE_SEED) -> str | None:
    """Why a result goes to human review (``violations`` or ``random``), or ``None``."""
    if result.verdict == "violations":
        return "violations"
    draw = int(hashlib.sha256(f"{seed}:{digest}".encode()).hexdigest()[:15], 16) / 16**15
    return "random" if draw < rate else None


def _view(row: QaResultRow, *, duplicate: bool = False) -> dict[str, Any]:
    out = dict(row.result)
    out.update(qa_id=row.id, sampled=row.sampled, sample_reason=row.sample_reason, collector_id=row.collector_ref)
    if duplicate:
        out["duplicate"] = True
    return out


def _case_for(s: Session, tr: Transcript, *, tenant_id: int, principal: Principal | None, field: str) -> Case | None:
    if tr.case_id is None:
        return None
    row = s.get(Case, tr.case_id)
    try:
        if principal is not None:
            return ensure_visible(row, principal, session=s)
        if row is None or row.tenant_id != tenant_id:
            raise NotFound("no such case")
    except NotFound:
        raise NotFound(f"no case {tr.case_id}", detail={"field": field}) from None
    return row


def qa_results_store(
    s: Session,
    *,
    cipher: PiiCipher,
    tenant_id: int,
    actor: str,
    now: dt.datetime,
    transcripts: Sequence[Transcript],
    principal: Principal | None = None,
    rate: float = SAMPLE_RATE,
    seed: str = SAMPLE_SEED,
) -> list[dict[str, Any]]:
    """Judge and store each transcript (with its audit record) in the caller's transaction.

    ``principal`` (API) limits ``case_id`` to cases it may see; without one (CLI) the case must
    belong to ``tenant_id``. A transcript stored before is not judged again: its result comes back
    with ``duplicate: true``.
    """
    out: list[dict[str, Any]] = []
    for i, tr in enumerate(transcripts):
        field = "case_id" if len(transcripts) == 1 else f"{i}.case_id"
        case_row = _case_for(s, tr, tenant_id=tenant_id, principal=principal, field=field)
        text, digest = transcript_digest(tr)
        old = s.scalar(select(QaResultRow).where(QaResultRow.tenant_id == tenant_id,
                                                 QaResultRow.transcript_sha256 == digest))
        if old is not None:
            out.append(_view(old, duplicate=True))
            continue
        result = qa_check(tr)
        reason = qa_sampled(result, digest, rate=rate, seed=seed)
        rules = sorted({f.rule for f in result.findings})
        row = QaResultRow(
            tenant_id=tenant_id, transcript_ref=tr.id, case_id=tr.case_id, collector_ref=tr.collector.id,
            jurisdiction=tr.jurisdiction, channel=tr.channel, call_time=tr.time, verdict=result.verdict,
            severity=result.severity, score=result.score, findings_count=len(result.findings),
            rules=" ".join(rules)[:500], result=result.model_dump(mode="json"), transcript_sha256=digest,
            transcript_enc=cipher.encrypt(text), sampled=reason is not None, sample_reason=reason,
            created_by=actor, created_at=now,
        )
        s.add(row)
        s.flush()
        borrower_id = case_row.borrower_id if case_row is not None else None
        audit_append(
            s, tenant_id=tenant_id, actor=actor, action="qa.run", subject=f"qa_result:{row.id}",
            payload={"qa_result_id": row.id, "transcript_sha256": digest, "verdict": result.verdict,
                     "score": result.score, "rules": rules, "case_id": tr.case_id, "borrower_id": borrower_id,
                     "collector": tr.collector.id, "sampled": reason},
            now=now, shard_key=str(borrower_id) if borrower_id is not None else None,
        )
        out.append(_view(row))
    return out


def qa_queue_list(s: Session, *, tenant_id: int, include_reviewed: bool = False,
                  limit: int = 100) -> list[dict[str, Any]]:
    """The review queue: sampled results, worst first (severity, then score), oldest first within."""
    reviews = (select(QaReviewRow.qa_result_id, func.count(QaReviewRow.id).label("n"),
                      func.avg(QaReviewRow.score).label("avg"))
               .group_by(QaReviewRow.qa_result_id).subquery())
    stmt = (select(QaResultRow, reviews.c.n, reviews.c.avg)
            .outerjoin(reviews, reviews.c.qa_result_id == QaResultRow.id)
            .where(QaResultRow.tenant_id == tenant_id, QaResultRow.sampled.is_(True))
            .order_by(_SEVERITY_RANK, QaResultRow.score, QaResultRow.id).limit(limit))
    if not include_reviewed:
        stmt = stmt.where(reviews.c.n.is_(None))
    return [
        {"qa_id": r.id, "transcript_id": r.transcript_ref, "case_id": r.case_id, "collector_id": r.collector_ref,
         "call_time": _iso(r.call_time), "channel": r.channel, "jurisdiction": r.jurisdiction,
         "verdict": r.verdict, "severity": r.severity, "score": r.score, "findings": r.findings_count,
         "rules": r.rules.split(), "reason": r.sample_reason, "reviews": n or 0,
         "review_score": _round(avg), "created_at": _iso(r.created_at)}
        for r, n, avg in s.execute(stmt)
    ]


def _round(v: Any) -> float | None:
    return None if v is None else round(float(v), 1)


def _iso(t: dt.datetime) -> str:
    # SQLite hands stored times back without their zone; they were stored as UTC.
    return (t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t).isoformat()


def _result(s: Session, *, tenant_id: int, qa_id: int) -> QaResultRow:
    row = s.get(QaResultRow, qa_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound("no such QA result", detail={"field": "qa_id"})
    return row


def qa_review_create(s: Session, *, tenant_id: int, qa_id: int, score: int, notes: str, actor: str,
                     now: dt.datetime) -> dict[str, Any]:
    """A reviewer's score (0–100) and notes for one result; ``NotFound`` for a foreign or unknown id."""
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 100:
        raise BadInput("must be a whole number from 0 to 100", field="score")
    if len(notes) > 4000:
        raise BadInput("at most 4000 characters", field="notes")
    result = _result(s, tenant_id=tenant_id, qa_id=qa_id)
    row = QaReviewRow(tenant_id=tenant_id, qa_result_id=result.id, reviewer=actor, score=score, notes=notes,
                      created_at=now)
    s.add(row)
    s.flush()
    audit_append(s, tenant_id=tenant_id, actor=actor, action="qa.review", subject=f"qa_result:{result.id}",
                 payload={"qa_result_id": result.id, "review_id": row.id, "score": score}, now=now)
    return {"review_id": row.id, "qa_id": result.id, "score": score, "notes": notes, "reviewer": actor,
            "created_at": now.isoformat()}


def qa_scorecards(s: Session, *, tenant_id: int) -> list[dict[str, Any]]:
    """Per collector: calls checked, calls with violations, violations per 100 calls, critical calls,
    average automatic score, reviews and average review score (``null`` without reviews)."""
    who = QaResultRow.collector_ref
    calls = s.execute(
        select(who, func.count(QaResultRow.id), func.sum(case((QaResultRow.verdict == "violations", 1), else_=0)),
               func.sum(QaResultRow.findings_count), func.sum(case((QaResultRow.severity == "critical", 1), else_=0)),
               func.avg(QaResultRow.score))
        .where(QaResultRow.tenant_id == tenant_id).group_by(who)
    ).all()
    reviewed = {ref: (n, avg) for ref, n, avg in s.execute(
        select(who, func.count(QaReviewRow.id), func.avg(QaReviewRow.score))
        .join(QaResultRow, QaResultRow.id == QaReviewRow.qa_result_id)
        .where(QaReviewRow.tenant_id == tenant_id).group_by(who))}
    cards = []
    for ref, n, bad, violations, critical, auto in calls:
        n_reviews, review_avg = reviewed.get(ref, (0, None))
        cards.append({"collector_id": ref, "calls": n, "calls_with_violations": int(bad or 0),
                      "violations": int(violations or 0),
                      "violations_per_100_calls": round(int(violations or 0) * 100 / n, 1),
                      "critical_calls": int(critical or 0), "average_score": _round(auto),
                      "reviews": n_reviews, "average_review_score": _round(review_avg)})
    return sorted(cards, key=lambda c: (-c["violations_per_100_calls"], c["collector_id"] or ""))


def qa_result_read(s: Session, *, cipher: PiiCipher, tenant_id: int, qa_id: int, actor: str,
                   now: dt.datetime) -> dict[str, Any]:
    """One result with its decrypted transcript and reviews; the read is audited (personal data)."""
    row = _result(s, tenant_id=tenant_id, qa_id=qa_id)
    reviews = s.scalars(select(QaReviewRow).where(QaReviewRow.qa_result_id == row.id).order_by(QaReviewRow.id))
    audit_append(s, tenant_id=tenant_id, actor=actor, action="qa.read", subject=f"qa_result:{row.id}",
                 payload={"qa_result_id": row.id}, now=now)
    return {**_view(row), "transcript": json.loads(cipher.decrypt(row.transcript_enc)),
            "reviews": [{"review_id": r.id, "score": r.score, "notes": r.notes, "reviewer": r.reviewer,
                         "created_at": _iso(r.created_at)} for r in reviews]}


# ---- API entry points ---------------------------------------------------------------------------

def qa_run_as(c: Container, *, principal: Principal, body: Any) -> dict[str, Any] | list[dict[str, Any]]:
    """POST /qa: one transcript -> one result, a list -> a list; stored, sampled and audited."""
    require(principal, "qa.run")
    transcripts, single = transcripts_parse(body)
    with c.uow() as s:
        out = qa_results_store(s, cipher=c.cipher, tenant_id=principal.tenant_id, actor=principal.actor,
                               now=c.clock(), transcripts=transcripts, principal=principal)
    return out[0] if single else out


def qa_queue_as(c: Container, *, principal: Principal, include_reviewed: bool, limit: int) -> list[dict[str, Any]]:
    """GET /qa/queue."""
    require(principal, "qa.run")
    with c.uow(write=False) as s:
        return qa_queue_list(s, tenant_id=principal.tenant_id, include_reviewed=include_reviewed, limit=limit)


def qa_review_as(c: Container, *, principal: Principal, qa_id: int, score: int, notes: str) -> dict[str, Any]:
    """POST /qa/reviews."""
    require(principal, "qa.run")
    with c.uow() as s:
        return qa_review_create(s, tenant_id=principal.tenant_id, qa_id=qa_id, score=score, notes=notes,
                                actor=principal.actor, now=c.clock())


def qa_scorecards_as(c: Container, *, principal: Principal) -> list[dict[str, Any]]:
    """GET /qa/scorecards."""
    require(principal, "qa.run")
    with c.uow(write=False) as s:
        return qa_scorecards(s, tenant_id=principal.tenant_id)


def qa_result_read_as(c: Container, *, principal: Principal, qa_id: int) -> dict[str, Any]:
    """GET /qa/results/{id}."""
    require(principal, "qa.run")
    with c.uow() as s:
        return qa_result_read(s, cipher=c.cipher, tenant_id=principal.tenant_id, qa_id=qa_id,
                              actor=principal.actor, now=c.clock())
