"""The set-based SQL of the daily run (SQLite and PostgreSQL), one statement per step.

Every statement is idempotent for a given as-of date ``:d``: it either writes the same values
again or skips rows that already carry them, so a stage that is rerun (after a crash, or forced)
leaves the database as one clean run would. Money is integer cents throughout.

DESIGN §13 as SQL, per loan and date D (payments apply to installments oldest first):
- ``paid``: the sum of payments dated on or before D (later payments do not count);
- ``closed`` when paid ≥ all dues; outstanding = max(0, all dues − paid);
- overdue = max(0, dues before D − paid); a loan with nothing overdue has DPD 0;
- for the others, ``cum`` is the running total of dues (a window, oldest first: due date, then
  seq); the oldest unpaid installment is the one where ``cum`` first exceeds ``paid``, i.e. where
  ``cum > paid AND cum - due <= paid`` (exactly one row; zero-due rows never match); DPD = D − its
  due date.
Pass A (plain aggregates over every loan) and pass B (the window, only over overdue loans'
installments due before D) are split because a window over every installment costs several
times an aggregate (SQLite buffers each partition); overdue loans are a small share. Pass C
re-derives the loans under a payment plan from the plan's installments. Only loans whose values
may change go into the temp table, and on SQLite loans found closed are not aggregated again
(``CLOSED_SKIP``). Loans disbursed after D are not part of the run for D.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import Connection, Date, TextClause, bindparam, text

from collectguard.domain.delinquency import DEFAULT_BUCKETS, BucketScheme

_NAME = re.compile(r"^[A-Za-z0-9+_-]{1,8}$")
DATE_PARAMS = ("d", "d3", "d7", "f", "u")


def dated(statement: str) -> TextClause:
    """``text(statement)`` with its date parameters typed DATE (SQLite keeps ISO text, PostgreSQL dates)."""
    names = [n for n in DATE_PARAMS if re.search(rf":{n}\b", statement)]
    return text(statement).bindparams(*(bindparam(n, type_=Date) for n in names))


def temp_table(conn: Connection, name: str, columns: str | None = None) -> None:
    """Drop the temp table ``name`` if this connection has one, then create it when ``columns`` are given."""
    schema = "temp" if conn.dialect.name == "sqlite" else "pg_temp"
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {schema}.{name}")
    if columns is not None:
        conn.exec_driver_sql(f"CREATE TEMP TABLE {name} ({columns})")


def bucket_case(scheme: BucketScheme = DEFAULT_BUCKETS, dpd: str = "dpd") -> str:
    """A SQL CASE mapping ``dpd`` of an open loan to its bucket name (edges inlined, validated)."""
    for name in scheme.names:
        if not _NAME.match(name):
            raise ValueError(f"bucket name {name!r} is not a plain short identifier")
    arms = " ".join(f"WHEN {dpd} <= {int(upper)} THEN '{name}'" for name, upper in scheme.edges)
    return f"CASE {arms} ELSE '{scheme.beyond}' END"


def days_between(dialect: str, later: str, earlier: str) -> str:
    """Whole days from ``earlier`` to ``later`` (both DATE expressions)."""
    if dialect == "sqlite":
        return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"
    return f"({later} - {earlier})"


_DUE = "i.principal_due + i.interest_due + i.fee_due"
_STORED = ("l.dpd AS stored_dpd, l.outstanding AS stored_outstanding, l.overdue_amount AS stored_overdue, "
           "l.debt_status")


# Closed stays closed: payments are only ever added (and count from their date on, and runs go
# forward), installments are only ever added (imports) or lowered and moved (waivers,
# extensions). So a loan the last run found closed, whose debt status the run would not change,
# is closed again unless an installment was added since (``dnew``: ids above the mark the last
# run recorded) or a payment plan governs it. The mark is exact on SQLite, whose positions stage
# holds the only write lock; on PostgreSQL a sequence number can become visible after a higher
# one, so the skip is not used there. ``--force`` recomputes every loan.
CLOSED_SKIP = """AND (l.bucket <> '{closed}' OR l.as_of IS NULL OR l.debt_status = 'valid'
     OR l.id IN (SELECT loan_id FROM dnew) {plans})"""
CREATE_DNEW = "CREATE TEMP TABLE dnew (loan_id INTEGER PRIMARY KEY)"
DNEW_SQL = "INSERT INTO dnew (loan_id) SELECT DISTINCT loan_id FROM installment WHERE id > :mark"
MARK_SQL = "SELECT COALESCE(MAX(id), 0) FROM installment"


def positions_sql(dialect: str, scheme: BucketScheme = DEFAULT_BUCKETS, *, plans: bool = False,
                  skip_closed: bool = False) -> str:
    """Pass A: INSERT into the temp table ``ds`` the balances on ``:d`` of loans with ids in [:lo, :hi]
    whose derived values may change.

    Plain aggregates, no window: paid, all dues, dues before D. A loan with nothing overdue has
    DPD 0 whatever its schedule, so only loans with an overdue amount need pass B. ``prev`` is
    the bucket before this run: the stored bucket when the loan was last changed by an earlier
    run, this date's own history row when the date is being recomputed, and NULL for a loan never
    computed: its first run sets its baseline, and history records changes from there on.

    Left out of ``ds``: loans with nothing overdue whose stored values are already what this run
    computes (most of a book on most days: current loans without a new due date or payment, and
    closed ones). Overdue loans are always in (their DPD moves every day), and so are loans under
    a payment plan (``plans``: pass C re-derives them) and loans never computed.

    ``skip_closed`` (``CLOSED_SKIP``): loans the last run found closed are not even aggregated.

    PostgreSQL hashes the chunk's installments and payments; SQLite walks the loans in id order
    and looks their installments and payments up by index (about 10 % less work for it than
    materialising the aggregates and joining them through automatic indexes). ``LIMIT -1`` keeps
    SQLite from pushing the outer filter into the aggregate as a HAVING clause, which would copy
    the correlated payment subquery into every term that reads ``paid``.
    """
    first = scheme.edges[0][0]
    skip = ""
    if skip_closed:
        skip = CLOSED_SKIP.format(closed=scheme.closed,
                                  plans="OR l.id IN (SELECT loan_id FROM dplan)" if plans else "")
    if dialect == "sqlite":
        balances = f"""
SELECT l.id AS loan_id, l.bucket AS stored_bucket, l.as_of AS stored_as_of, {_STORED},
       COALESCE((SELECT SUM(p.amount) FROM payment p WHERE p.loan_id = l.id AND p.paid_on <= :d), 0) AS paid,
       COALESCE(SUM({_DUE}), 0) AS total_due,
       COALESCE(SUM(CASE WHEN i.due_date < :d THEN {_DUE} ELSE 0 END), 0) AS due_before
FROM loan l LEFT JOIN installment i ON i.loan_id = l.id
WHERE l.id BETWEEN :lo AND :hi AND l.disbursed_on <= :d {skip}
GROUP BY l.id LIMIT -1"""  # noqa: S608 - fixed expressions only
    else:
        balances = f"""
WITH paid AS (
  SELECT loan_id, SUM(amount) AS paid FROM payment
  WHERE paid_on <= :d AND loan_id BETWEEN :lo AND :hi GROUP BY loan_id
),
sc AS (
  SELECT i.loan_id, SUM({_DUE}) AS total_due,
         SUM(CASE WHEN i.due_date < :d THEN {_DUE} ELSE 0 END) AS due_before
  FROM installment i WHERE i.loan_id BETWEEN :lo AND :hi GROUP BY i.loan_id
)
SELECT l.id AS loan_id, l.bucket AS stored_bucket, l.as_of AS stored_as_of, {_STORED}, COALESCE(p.paid, 0) AS paid,
       COALESCE(sc.total_due, 0) AS total_due, COALESCE(sc.due_before, 0) AS due_before
FROM loan l LEFT JOIN sc ON sc.loan_id = l.id LEFT JOIN paid p ON p.loan_id = l.id
WHERE l.id BETWEEN :lo AND :hi AND l.disbursed_on <= :d {skip}"""  # noqa: S608 - fixed expressions only
    bucket = f"CASE WHEN s.total_due <= s.paid THEN '{scheme.closed}' ELSE '{first}' END"
    outstanding = "CASE WHEN s.total_due > s.paid THEN s.total_due - s.paid ELSE 0 END"
    # S608: only validated bucket names and fixed expressions are formatted in; values are bound.
    return f"""
INSERT INTO ds (loan_id, paid, total_due, dpd, bucket, outstanding, overdue, prev)
SELECT s.loan_id, s.paid, s.total_due, 0, {bucket}, {outstanding},
       CASE WHEN s.due_before > s.paid THEN s.due_before - s.paid ELSE 0 END,
       CASE WHEN s.stored_as_of IS NULL THEN NULL
            WHEN s.stored_as_of < :d THEN s.stored_bucket
            ELSE COALESCE((SELECT h.from_bucket FROM bucket_history h
                           WHERE h.loan_id = s.loan_id AND h.as_of = :d), s.stored_bucket) END
FROM ({balances}) s
WHERE s.stored_as_of IS NULL OR s.due_before > s.paid OR s.stored_dpd <> 0 OR s.stored_bucket <> {bucket}
   OR COALESCE(s.stored_outstanding, -1) <> {outstanding} OR COALESCE(s.stored_overdue, -1) <> 0
   OR (s.debt_status = 'valid' AND s.total_due <= s.paid) OR (s.debt_status = 'paid' AND s.total_due > s.paid)
   {"OR s.loan_id IN (SELECT loan_id FROM dplan)" if plans else ""}
"""  # noqa: S608 - fixed identifiers and validated names; values are bound


def overdue_sql(dialect: str, scheme: BucketScheme = DEFAULT_BUCKETS) -> str:
    """Pass B: DPD and bucket of the loans in ``ds`` with an overdue amount.

    For them paid < dues before D, so the oldest unpaid installment is among those due before D:
    the running total of their dues (a window, oldest first) finds it, the one row per loan where
    the running total first exceeds ``paid`` (no GROUP BY, so no second sort). ``CROSS JOIN`` makes
    SQLite drive the join from the few overdue loans (it has no statistics on the temp table).
    """
    dpd = days_between(dialect, ":d", "w.due_date")
    return f"""
UPDATE ds SET dpd = o.dpd, bucket = {bucket_case(scheme, "o.dpd")}
FROM (SELECT w.loan_id, {dpd} AS dpd
      FROM (SELECT i.loan_id, i.due_date, {_DUE} AS due, d2.paid,
                   SUM({_DUE}) OVER (PARTITION BY i.loan_id ORDER BY i.due_date, i.seq
                                     ROWS UNBOUNDED PRECEDING) AS cum
            FROM ds d2 CROSS JOIN installment i
            WHERE d2.overdue > 0 AND i.loan_id = d2.loan_id AND i.due_date < :d) w
      WHERE w.cum > w.paid AND w.cum - w.due <= w.paid) o
WHERE ds.loan_id = o.loan_id
"""  # noqa: S608 - fixed identifiers and validated names; values are bound


# ---------------------------------------------------------------- payment plans re-age the schedule
# A loan with an accepted payment plan (``active``, and still once it is ``completed`` or
# ``broken``) owes, from the plan's start S on, the plan's installments instead of what was left of
# its contractual schedule: payments dated before S went to the contract, those from S to D go to
# the plan's installments, oldest first. Any part of the contractual balance at S that the plan
# does not cover (``rest``: all dues − paid before S − the plan's total, when positive) is not
# forgiven: it falls due with the plan's last installment (a write-off is a waiver, which lowers the
# contract's dues). DPD counts from the oldest unpaid plan installment, overdue is the plan's dues
# before D less what was paid since S, and the loan is ``closed`` once plan and rest are paid: §13
# applied to the schedule [paid before S] + plan installments + rest (docs/ledger.md). The latest
# accepted plan that has started governs. A plan's status only moves between the accepted states
# (the outcomes stage settles it after this one), so a rerun of the date computes the same values.
PLAN_ACCEPTED = "('active', 'completed', 'broken')"
CREATE_DPLAN = {
    "sqlite": "CREATE TEMP TABLE dplan (loan_id INTEGER PRIMARY KEY, plan_id INTEGER, starts_on TEXT)",
    "postgresql": "CREATE TEMP TABLE dplan (loan_id BIGINT PRIMARY KEY, plan_id BIGINT, starts_on DATE)",
}
DPLAN_SQL = f"""
INSERT INTO dplan (loan_id, plan_id, starts_on)
SELECT g.loan_id, g.plan_id, g.starts_on FROM (
  SELECT pi.loan_id, pi.plan_id, pi.starts_on,
         ROW_NUMBER() OVER (PARTITION BY pi.loan_id ORDER BY pi.starts_on DESC, pi.plan_id DESC) AS rn
  FROM (SELECT DISTINCT loan_id, plan_id, starts_on FROM plan_installment) pi
  JOIN payment_plan pl ON pl.id = pi.plan_id
  WHERE pl.status IN {PLAN_ACCEPTED} AND pi.starts_on <= :d) g
WHERE g.rn = 1
"""  # noqa: S608 - fixed text


def plan_positions_sql(scheme: BucketScheme = DEFAULT_BUCKETS) -> str:
    """Pass C1: balances of the chunk's loans under a plan (``dplan``), on the plan's schedule.

    ``x.paid`` is what was paid from the plan's start to D; ``ds.paid`` (all payments to D) and
    ``ds.total_due`` (all contractual dues) still hold pass A's values while the SET is evaluated.
    """
    first = scheme.edges[0][0]
    rest = "(ds.total_due - (ds.paid - x.paid) - x.plan_total)"
    rest = f"(CASE WHEN {rest} > 0 THEN {rest} ELSE 0 END)"
    total = f"(x.plan_total + {rest})"
    before = f"(x.plan_before + CASE WHEN x.last_due < :d THEN {rest} ELSE 0 END)"
    return f"""
UPDATE ds SET paid = x.paid, total_due = {total}, dpd = 0,
       bucket = CASE WHEN {total} <= x.paid THEN '{scheme.closed}' ELSE '{first}' END,
       outstanding = CASE WHEN {total} > x.paid THEN {total} - x.paid ELSE 0 END,
       overdue = CASE WHEN {before} > x.paid THEN {before} - x.paid ELSE 0 END
FROM (SELECT g.loan_id, SUM(i.amount) AS plan_total, MAX(i.due_date) AS last_due,
             SUM(CASE WHEN i.due_date < :d THEN i.amount ELSE 0 END) AS plan_before,
             COALESCE((SELECT SUM(p.amount) FROM payment p
                       WHERE p.loan_id = g.loan_id AND p.paid_on >= g.starts_on AND p.paid_on <= :d), 0) AS paid
      FROM dplan g JOIN plan_installment i ON i.plan_id = g.plan_id
      WHERE g.loan_id BETWEEN :lo AND :hi GROUP BY g.loan_id, g.starts_on) x
WHERE ds.loan_id = x.loan_id
"""  # noqa: S608 - fixed identifiers and validated names; values are bound


def plan_overdue_sql(dialect: str, scheme: BucketScheme = DEFAULT_BUCKETS) -> str:
    """Pass C2: DPD and bucket of the chunk's loans behind on their plan (pass B over its installments).

    When every plan installment due before D is paid and the loan is still overdue, what is unpaid
    is the rest, due with the last installment (the latest due date of the window).
    """
    dpd = days_between(dialect, ":d", "o.oldest")
    return f"""
UPDATE ds SET dpd = o.dpd, bucket = {bucket_case(scheme, "o.dpd")}
FROM (SELECT o.loan_id, {dpd} AS dpd FROM (
        SELECT w.loan_id,
               COALESCE(MIN(CASE WHEN w.cum > w.paid AND w.cum - w.amount <= w.paid THEN w.due_date END),
                        MAX(w.due_date)) AS oldest
        FROM (SELECT g.loan_id, i.due_date, i.amount, d2.paid,
                     SUM(i.amount) OVER (PARTITION BY g.loan_id ORDER BY i.due_date, i.seq
                                         ROWS UNBOUNDED PRECEDING) AS cum
              FROM dplan g CROSS JOIN ds d2 CROSS JOIN plan_installment i
              WHERE g.loan_id BETWEEN :lo AND :hi AND d2.loan_id = g.loan_id AND d2.overdue > 0
                AND i.plan_id = g.plan_id AND i.due_date < :d) w
        GROUP BY w.loan_id) o) o
WHERE ds.loan_id = o.loan_id
"""  # noqa: S608 - fixed identifiers and validated names; values are bound


CREATE_DS = {
    "sqlite": "CREATE TEMP TABLE ds (loan_id INTEGER PRIMARY KEY, paid INTEGER, total_due INTEGER, "
              "dpd INTEGER, bucket TEXT, outstanding INTEGER, overdue INTEGER, prev TEXT)",
    "postgresql": "CREATE TEMP TABLE ds (loan_id BIGINT PRIMARY KEY, paid BIGINT, total_due BIGINT, "
                  "dpd INTEGER, bucket VARCHAR(8), outstanding BIGINT, overdue BIGINT, prev VARCHAR(8))",
}

# History: a row only when the bucket changed since the loan's previous run (a loan's first run
# sets its baseline: ``prev`` is NULL and no comparison holds). The first two statements only
# matter when a date is recomputed (a forced rerun after its inputs changed); they run only when
# D already has rows.
HISTORY_EXISTS_SQL = "SELECT 1 FROM bucket_history WHERE as_of = :d LIMIT 1"
HISTORY_RECOMPUTE_SQL = (
    """DELETE FROM bucket_history WHERE as_of = :d
       AND loan_id IN (SELECT loan_id FROM ds WHERE prev = bucket)""",
    """UPDATE bucket_history SET to_bucket = ds.bucket, from_bucket = ds.prev FROM ds
       WHERE bucket_history.loan_id = ds.loan_id AND bucket_history.as_of = :d
         AND ds.prev <> ds.bucket AND bucket_history.to_bucket <> ds.bucket""",
)
# ON CONFLICT rather than NOT EXISTS on the table being filled: PostgreSQL plans an anti-join
# against a table its statistics call empty as a nested loop of sequential scans, which then
# crawl through the rows the statement itself inserts (quadratic).
HISTORY_INSERT_SQL = """INSERT INTO bucket_history (loan_id, as_of, from_bucket, to_bucket)
       SELECT ds.loan_id, :d, ds.prev, ds.bucket FROM ds WHERE ds.prev <> ds.bucket
       ON CONFLICT (loan_id, as_of) DO NOTHING"""


def window_plans_and_history(
    conn: Connection,
    d: dt.date,
    lo: int,
    hi: int,
    *,
    plan_statements: tuple[TextClause, TextClause] | None,
    recompute: bool,
) -> None:
    """After a window's positions are in ``ds``: the positions of loans under a payment plan (their
    schedule from the plan's start is the plan's), then the window's bucket history (recomputed
    first when the date already has rows). Shared by the SQLite/full and the PostgreSQL runs."""
    if plan_statements is not None:
        for stmt in plan_statements:
            conn.execute(stmt, {"d": d, "lo": lo, "hi": hi})
    if recompute:
        for stmt in HISTORY_RECOMPUTE_SQL:
            conn.execute(dated(stmt), {"d": d})
    conn.execute(dated(HISTORY_INSERT_SQL), {"d": d})

# A paid-off loan's debt status becomes ``paid`` (the guard then refuses to collect it) and goes
# back to ``valid`` if it reopens; ``disputed`` and ``illegal`` are decisions nobody else undoes.
# Only loans whose derived values change are written (``as_of`` is the run that last changed
# them): a current or closed loan stays as it is, so a day's run rewrites the overdue loans and
# those with new dues or payments, not the whole book.
_STATUS = """CASE WHEN ds.bucket = 'closed' AND loan.debt_status = 'valid' THEN 'paid'
                  WHEN ds.bucket <> 'closed' AND loan.debt_status = 'paid' THEN 'valid'
                  ELSE loan.debt_status END"""
LOAN_UPDATE_SQL = f"""
UPDATE loan SET dpd = ds.dpd, bucket = ds.bucket, outstanding = ds.outstanding,
       overdue_amount = ds.overdue, as_of = :d, debt_status = {_STATUS}
FROM ds WHERE loan.id = ds.loan_id AND loan.id BETWEEN :lo AND :hi
  AND (loan.as_of IS NULL OR loan.dpd <> ds.dpd OR loan.bucket <> ds.bucket
       OR COALESCE(loan.outstanding, -1) <> ds.outstanding OR COALESCE(loan.overdue_amount, -1) <> ds.overdue
       OR loan.debt_status <> {_STATUS})
"""  # noqa: S608 - fixed text

# After the update every loan of the chunk in the run holds this run's bucket (``ds`` holds only
# the changed ones).
COUNTS_SQL = "SELECT bucket, COUNT(*) FROM loan WHERE id BETWEEN :lo AND :hi AND disbursed_on <= :d GROUP BY bucket"

# Cases. One pass over the open cases closes the cured (back to the first bucket) and paid
# (closed) ones and makes the others follow their loan's bucket and DPD; then the assignments of
# the cases closed today end, and a case opens for each loan past due that has none open. One
# pass rather than a close pass and a follow pass: each reads every open case's loan row (by
# index, at random), the dearest part of the stage on a large book.
_CLOSE = """loan.bucket IN (:current, 'closed')
         AND (loan.bucket = 'closed' OR collection_case.paused_reason IS NULL
              OR collection_case.paused_reason <> 'payment_plan')"""
CASES_SQL = (
    # A case paused for a payment plan stays open while the plan is kept (its loan is current on the
    # plan's schedule): it closes as ``paid`` with the loan, or resumes if the plan breaks.
    f"""UPDATE collection_case
       SET status = CASE WHEN {_CLOSE} THEN 'closed' ELSE collection_case.status END,
           closed_on = CASE WHEN {_CLOSE} THEN :d ELSE collection_case.closed_on END,
           close_reason = CASE WHEN NOT ({_CLOSE}) THEN collection_case.close_reason
                               WHEN loan.bucket = 'closed' THEN 'paid' ELSE 'cured' END,
           bucket = loan.bucket, dpd = loan.dpd
       FROM loan
       WHERE collection_case.loan_id = loan.id AND collection_case.status = 'open'
         AND (({_CLOSE}) OR collection_case.bucket <> loan.bucket OR collection_case.dpd <> loan.dpd)""",  # noqa: S608
    """UPDATE case_assignment SET ended_on = :d, end_reason = 'closed'
       WHERE ended_on IS NULL
         AND case_id IN (SELECT id FROM collection_case WHERE status = 'closed' AND closed_on = :d)""",
)

# Then a case opens for each loan past due that has none open. One open case per loan is the
# partial unique index uq_case_open_loan; the loans that have one (nearly all of them, every day)
# are left out by an anti-join with a snapshot of the open cases' loans (``dopen``), not by a
# conflict on that index per loan (three to four times slower), nor by NOT EXISTS on the cases
# themselves, which PostgreSQL plans on a first run as a nested loop of sequential scans through
# the cases the statement itself inserts (quadratic; see HISTORY_INSERT_SQL).
CREATE_DOPEN = {
    "sqlite": "CREATE TEMP TABLE dopen (loan_id INTEGER PRIMARY KEY)",
    "postgresql": "CREATE TEMP TABLE dopen (loan_id BIGINT)",
}
DOPEN_SQL = "INSERT INTO dopen (loan_id) SELECT loan_id FROM collection_case WHERE status = 'open'"
CASE_OPEN_SQL = """
INSERT INTO collection_case (tenant_id, loan_id, borrower_id, status, bucket, dpd, opened_on)
SELECT l.tenant_id, l.id, l.borrower_id, 'open', l.bucket, l.dpd, :d FROM loan l
WHERE l.bucket NOT IN (:current, 'closed') AND l.debt_status = 'valid'
  AND NOT EXISTS (SELECT 1 FROM dopen o WHERE o.loan_id = l.id)
ON CONFLICT (loan_id) WHERE status = 'open' DO NOTHING"""

CASE_COUNTS_SQL = """
SELECT (SELECT COUNT(*) FROM collection_case WHERE opened_on = :d),
       (SELECT COUNT(*) FROM collection_case WHERE closed_on = :d AND close_reason IN ('cured', 'paid'))
"""


# ---------------------------------------------------------------- the work queue (services/queue.py)
# Outcomes of an attempt that mean a person answered (a connected call).
CONNECTED = "('connected', 'ptp', 'refused', 'no_contact_request', 'dispute')"
CHANNELS = ("call", "sms", "email", "im", "app_push", "visit", "letter", "public_post")

# CREATE TABLE … AS cannot take bind parameters on PostgreSQL: the dates sit in a one-row table.
QUEUE_TEMP = {
    "q_p": "d DATE, d3 DATE, d7 DATE",
    "q_step": "tenant_id BIGINT, jurisdiction VARCHAR(2), bucket VARCHAR(8), base INTEGER, day INTEGER, "
              "every INTEGER, step VARCHAR(64), channel VARCHAR(16), role VARCHAR(32), purpose VARCHAR(32), "
              "template VARCHAR(64), local_time VARCHAR(5)",
    "q_verdict": "sig BIGINT PRIMARY KEY, allow INTEGER, rules VARCHAR(500), pack VARCHAR(48)",
    "q_slot": "timezone VARCHAR(64), local_time VARCHAR(5), planned_at TIMESTAMP WITH TIME ZONE",
}

# Per number or address reached: today's attempts by channel, texts today, calls in the 7 days
# ending today, days since the last conversation, all earlier contacts (DESIGN §5 history).
HIST_RECIPIENT_SQL = f"""
CREATE TEMP TABLE q_hr AS
SELECT a.recipient_key,
       {", ".join(f"SUM(CASE WHEN a.local_date = p.d AND a.channel = '{ch}' THEN 1 ELSE 0 END) AS t_{ch}"
                  for ch in CHANNELS)},
       SUM(CASE WHEN a.local_date = p.d AND a.channel IN ('sms', 'im') THEN 1 ELSE 0 END) AS messages_today,
       SUM(CASE WHEN a.channel = 'call' AND a.local_date >= p.d7 AND a.local_date <= p.d THEN 1 ELSE 0 END)
         AS calls_7d,
       MAX(CASE WHEN a.channel = 'call' AND a.outcome IN {CONNECTED} THEN a.local_date END) AS last_conv,
       COUNT(*) AS prior
FROM q_p p CROSS JOIN contact_attempt a WHERE a.local_date <= p.d GROUP BY a.recipient_key
"""  # noqa: S608 - fixed identifiers and validated names; values are bound

# Per debtor: connected calls today (lender and agencies together) and the last three days'
# attempts, for "no successful contact on 3 consecutive days" (失联): tried on each of the three
# days before D, and answered on none of them nor on D (as services.facts counts it).
HIST_BORROWER_SQL = f"""
CREATE TEMP TABLE q_hb AS
SELECT a.borrower_id,
       SUM(CASE WHEN a.local_date = p.d AND a.channel = 'call' AND a.recipient_role = 'borrower'
                 AND a.outcome IN {CONNECTED} THEN 1 ELSE 0 END) AS connected_today,
       COUNT(DISTINCT CASE WHEN a.local_date >= p.d3 AND a.local_date < p.d AND a.recipient_role = 'borrower'
                           THEN a.local_date END) AS days3,
       SUM(CASE WHEN a.local_date >= p.d3 AND a.local_date <= p.d AND a.recipient_role = 'borrower'
                 AND a.outcome IN {CONNECTED} THEN 1 ELSE 0 END) AS conn3
FROM q_p p CROSS JOIN contact_attempt a WHERE a.local_date >= p.d3 AND a.local_date <= p.d
GROUP BY a.borrower_id
"""  # noqa: S608 - fixed identifiers and validated names; values are bound

# Per borrower: the consents in force ('separate' sorts after 'bundled', so MAX picks it), the
# withdrawn kinds as bits (1 contact_list, 2 third_party_contact, 4 agreed_hours), agreed hours.
CONSENT_SQL = """
CREATE TEMP TABLE q_k AS
SELECT borrower_id,
       MAX(CASE WHEN kind = 'contact_list' AND withdrawn_at IS NULL THEN form END) AS cl,
       MAX(CASE WHEN kind = 'third_party_contact' AND withdrawn_at IS NULL THEN form END) AS tp,
       MAX(CASE WHEN kind = 'contact_list' AND withdrawn_at IS NOT NULL THEN 1 ELSE 0 END)
     + MAX(CASE WHEN kind = 'third_party_contact' AND withdrawn_at IS NOT NULL THEN 2 ELSE 0 END)
     + MAX(CASE WHEN kind = 'agreed_hours' AND withdrawn_at IS NOT NULL THEN 4 ELSE 0 END) AS withdrawn,
       MAX(CASE WHEN kind = 'agreed_hours' AND withdrawn_at IS NULL THEN {hours} END) AS hours,
       MAX(CASE WHEN kind = 'outsourcing_notice' AND withdrawn_at IS NULL THEN 1 ELSE 0 END) AS notice
FROM consent WHERE borrower_id IN (SELECT borrower_id FROM collection_case WHERE status = 'open')
GROUP BY borrower_id
"""

# Per borrower: the flags in force (as services.facts reads them for an attempt).
FLAGS_SQL = """
CREATE TEMP TABLE q_fl AS
SELECT borrower_id,
       MAX(CASE WHEN kind = 'no_contact_request' THEN 1 ELSE 0 END) AS ncr,
       MAX(CASE WHEN kind = 'represented_by_attorney' THEN 1 ELSE 0 END) AS attorney,
       MAX(CASE WHEN kind = 'employer_prohibits' THEN 1 ELSE 0 END) AS employer
FROM borrower_flag WHERE cleared_at IS NULL
  AND borrower_id IN (SELECT borrower_id FROM collection_case WHERE status = 'open')
GROUP BY borrower_id
"""
HOURS_JSON = {"sqlite": "json_extract(detail, '$.hours')", "postgresql": "(detail::jsonb ->> 'hours')"}

# The facts the guard reads, in the order of the signature (identical facts, one guard call).
FACTS = ("tenant_id", "jurisdiction", "channel", "role", "purpose", "template", "language", "local_time",
         "timezone", "dpd", "rate", "lender_type", "lpr", "debt_status", "collector_kind", "contract",
         "notified", "cl", "tp", "withdrawn", "hours", "source", "no_contact", "attorney", "employer",
         "unreachable",
         "connected_today", "attempts_today", "messages_today", "calls_7d", "last_conv", "prior")

_EARLIER = "ORDER BY x.local_time, x.case_id, x.step"
_PHONE = "('call', 'sms', 'im', 'app_push')"  # channels that reach a phone number (facts.recipient_key_for)
_STEP_DUE = """(c.dpd - s.base = s.day
     OR (s.every > 0 AND c.dpd - s.base > s.day AND (c.dpd - s.base - s.day) % s.every = 0))"""


def candidates_sql(dialect: str) -> str:
    """CREATE the temp table ``q_cand``: every step due today for every open, unpaused case that
    has no promise to pay still running (the borrower is left alone until its due date).

    Actions planned earlier the same day to the same person count as if they had happened (every
    earlier call connected), so that a cap is never exceeded by the queue itself. The facts follow
    ``services.facts.stored_event``, which judges the contact again when it is made: the number
    or address as ``recipient_key_for`` keys it, the borrower's flags, and stops (停催) — a case
    under a case stop gets no actions (``stops.QUEUE_STOP_FILTER_SQL``); a stopped number makes
    its recipient ``no_contact_requested`` and the debt ``disputed``, as ``stop_apply`` does.
    """
    from collectguard.services.stops import QUEUE_STOP_FILTER_SQL

    since = days_between(dialect, "p.d", "hr.last_conv")
    person = ("CASE WHEN s.role = 'borrower' THEN 'b' || CAST(b.id AS VARCHAR(20)) "
              "ELSE 'c' || CAST(ct.id AS VARCHAR(20)) END")
    key = (f"CASE WHEN s.channel IN {_PHONE} THEN "
           "CASE WHEN s.role = 'borrower' THEN b.phone_hmac ELSE ct.phone_hmac END "
           f"ELSE s.channel || ':' || {person} END")
    number_stop = ("EXISTS (SELECT 1 FROM collection_stop st WHERE st.scope = 'number' "  # noqa: S608
                   f"AND st.borrower_id = c.borrower_id AND st.contact_key = {key} AND st.lifted_at IS NULL "
                   "AND st.starts_on <= p.d AND (st.ends_on IS NULL OR st.ends_on >= p.d))")
    today = "CASE s.channel " + " ".join(f"WHEN '{ch}' THEN hr.t_{ch}" for ch in CHANNELS) + " END"
    return f"""
CREATE TEMP TABLE q_cand AS
SELECT y.*, DENSE_RANK() OVER (ORDER BY {", ".join("y." + f for f in FACTS)}) AS sig FROM (
SELECT x.case_id, x.loan_id, x.borrower_id, x.contact_id, x.recipient_key, x.step, x.assignee_user_id,
       x.agency_tenant_id, {", ".join("x." + f for f in FACTS[:26])},
       x.connected_today + CASE WHEN x.channel = 'call' AND x.role = 'borrower' THEN
         ROW_NUMBER() OVER (PARTITION BY x.borrower_id, x.channel, x.role {_EARLIER}) - 1 ELSE 0 END
         AS connected_today,
       x.attempts_today + ROW_NUMBER() OVER (PARTITION BY x.hmac, x.channel {_EARLIER}) - 1 AS attempts_today,
       x.messages_today + CASE WHEN x.channel IN ('sms', 'im') THEN
         ROW_NUMBER() OVER (PARTITION BY x.hmac, x.channel IN ('sms', 'im') {_EARLIER}) - 1 ELSE 0 END
         AS messages_today,
       x.calls_7d + CASE WHEN x.channel = 'call' THEN
         ROW_NUMBER() OVER (PARTITION BY x.hmac, x.channel {_EARLIER}) - 1 ELSE 0 END AS calls_7d,
       x.last_conv, x.prior
FROM (
SELECT c.id AS case_id, c.loan_id, c.borrower_id, ct.id AS contact_id,
       CASE WHEN s.role = 'borrower' THEN 'borrower' ELSE 'contact:' || CAST(ct.id AS VARCHAR(20)) END
         AS recipient_key,
       s.step, c.assignee_user_id, c.agency_tenant_id,
       {key} AS hmac,
       c.tenant_id, b.jurisdiction, s.channel, s.role, s.purpose, s.template,
       CASE WHEN b.language LIKE 'zh%' THEN 'zh' ELSE 'en' END AS language, s.local_time, b.timezone,
       c.dpd, COALESCE(l.apr, l.annual_rate) AS rate, l.lender_type, COALESCE(l.lpr_at_signing, -1) AS lpr,
       CASE WHEN {number_stop} THEN 'disputed' ELSE l.debt_status END AS debt_status,
       CASE WHEN c.agency_tenant_id IS NULL THEN 'lender' ELSE 'agency' END AS collector_kind,
       CASE WHEN ac.processing_contract THEN 1 ELSE 0 END AS contract,
       CASE WHEN COALESCE(k.notice, 0) = 1
              OR EXISTS (SELECT 1 FROM case_assignment z WHERE z.case_id = c.id AND z.ended_on IS NULL
                           AND z.agency_tenant_id = c.agency_tenant_id AND z.borrower_notified_on <= p.d)
            THEN 1 ELSE 0 END AS notified,
       COALESCE(k.cl, 'none') AS cl, COALESCE(k.tp, 'none') AS tp, COALESCE(k.withdrawn, 0) AS withdrawn,
       COALESCE(k.hours, '') AS hours, COALESCE(ct.source, '') AS source,
       CASE WHEN {number_stop} THEN 1 WHEN s.role = 'borrower' THEN COALESCE(fl.ncr, 0)
            WHEN ct.no_contact_requested THEN 1 ELSE 0 END AS no_contact,
       COALESCE(fl.attorney, 0) AS attorney,
       CASE WHEN s.role = 'borrower' THEN COALESCE(fl.employer, 0) ELSE 0 END AS employer,
       CASE WHEN b.status IN ('deceased', 'incapacitated')
              OR (COALESCE(hb.days3, 0) >= 3 AND COALESCE(hb.conn3, 0) = 0) THEN 1 ELSE 0 END AS unreachable,
       COALESCE(hb.connected_today, 0) AS connected_today, COALESCE({today}, 0) AS attempts_today,
       COALESCE(hr.messages_today, 0) AS messages_today, COALESCE(hr.calls_7d, 0) AS calls_7d,
       COALESCE({since}, -1) AS last_conv, COALESCE(hr.prior, 0) AS prior
FROM q_p p CROSS JOIN collection_case c
JOIN loan l ON l.id = c.loan_id
JOIN borrower b ON b.id = c.borrower_id
JOIN q_step s ON s.tenant_id = c.tenant_id AND s.jurisdiction = b.jurisdiction AND s.bucket = c.bucket
LEFT JOIN contact ct ON s.role <> 'borrower' AND ct.borrower_id = c.borrower_id AND ct.relation = s.role
LEFT JOIN agency_contract ac ON ac.lender_tenant_id = c.tenant_id AND ac.agency_tenant_id = c.agency_tenant_id
                              AND ac.active
LEFT JOIN q_k k ON k.borrower_id = c.borrower_id
LEFT JOIN q_hb hb ON hb.borrower_id = c.borrower_id
LEFT JOIN q_fl fl ON fl.borrower_id = c.borrower_id
LEFT JOIN q_hr hr ON hr.recipient_key = {key}
WHERE c.status = 'open' AND c.paused_reason IS NULL AND {_STEP_DUE}
  AND (s.role = 'borrower' OR ct.id IS NOT NULL)
  AND NOT EXISTS (SELECT 1 FROM ptp t WHERE t.case_id = c.id AND t.status = 'open' AND t.due_date >= p.d)
  AND {QUEUE_STOP_FILTER_SQL}
) x) y
"""  # noqa: S608 - fixed identifiers and validated names; values are bound


QUEUE_INSERT_SQL = """
INSERT INTO work_item (as_of, tenant_id, case_id, loan_id, borrower_id, contact_id, recipient_key, step,
                       channel, recipient_role, purpose, template, language, local_time, timezone, planned_at,
                       assignee_user_id, agency_tenant_id, pack, status)
SELECT :d, q.tenant_id, q.case_id, q.loan_id, q.borrower_id, q.contact_id, q.recipient_key, q.step, q.channel,
       q.role, q.purpose, q.template, q.language, q.local_time, q.timezone, t.planned_at,
       q.assignee_user_id, q.agency_tenant_id, v.pack, 'planned'
FROM q_cand q
JOIN q_verdict v ON v.sig = q.sig AND v.allow = 1
JOIN q_slot t ON t.timezone = q.timezone AND t.local_time = q.local_time
WHERE 1 = 1
ON CONFLICT (as_of, case_id, step, recipient_key) DO NOTHING
"""

QUEUE_DENIED_SQL = """
SELECT v.rules, COUNT(*) FROM q_cand q JOIN q_verdict v ON v.sig = q.sig WHERE v.allow = 0 GROUP BY v.rules
"""

SIGNATURES_SQL = f"SELECT DISTINCT sig, {', '.join(FACTS)} FROM q_cand"  # noqa: S608 - fixed column names

# ---------------------------------------------------------------- assignment (services/queue.py)
# S608 in this block: only the fixed fragments and column names here are formatted in.
_UNHELD = ("c.status = 'open' AND c.paused_reason IS NULL "
           "AND c.assignee_user_id IS NULL AND c.agency_tenant_id IS NULL")
UNHELD_TENANTS_SQL = f"SELECT DISTINCT c.tenant_id FROM collection_case c WHERE {_UNHELD}"  # noqa: S608
AGENCIES_SQL = """
SELECT ac.agency_tenant_id, ac.capacity - (SELECT COUNT(*) FROM collection_case c
         WHERE c.tenant_id = ac.lender_tenant_id AND c.agency_tenant_id = ac.agency_tenant_id
           AND c.status = 'open')
FROM agency_contract ac WHERE ac.lender_tenant_id = :t AND ac.active AND ac.processing_contract
ORDER BY ac.agency_tenant_id"""
COLLECTORS_SQL = """
SELECT cc.user_id, cc.capacity - (SELECT COUNT(*) FROM collection_case c
         WHERE c.assignee_user_id = cc.user_id AND c.status = 'open')
FROM collector_capacity cc WHERE cc.tenant_id = :t AND cc.active ORDER BY cc.user_id"""
# Worst first; agencies only get the buckets the strategy outsources (``q_out``).
_RANK = ("INSERT INTO q_rank (case_id, rnk) SELECT c.id, "  # noqa: S608
         "ROW_NUMBER() OVER (ORDER BY c.dpd DESC, c.id) FROM collection_case c "
         f"WHERE c.tenant_id = :t AND {_UNHELD}")
RANK_COLLECTOR_SQL = _RANK
RANK_AGENCY_SQL = _RANK + (" AND EXISTS (SELECT 1 FROM borrower b JOIN q_out o"  # noqa: S608
                           " ON o.jurisdiction = b.jurisdiction"
                           " WHERE b.id = c.borrower_id AND o.bucket = c.bucket)")
_PICKED = "FROM q_rank r JOIN q_holder h ON h.rnk = r.rnk"


def _hand_out(column: str, kind: str) -> tuple[str, str]:
    update = (f"UPDATE collection_case SET {column} = "  # noqa: S608
              f"(SELECT h.holder {_PICKED} WHERE r.case_id = collection_case.id) "
              f"WHERE id IN (SELECT r.case_id {_PICKED})")
    insert = (f"INSERT INTO case_assignment (tenant_id, case_id, {kind}, assigned_on) "
              f"SELECT :t, r.case_id, h.holder, :d {_PICKED}")
    return update, insert


HAND_OUT_AGENCY_SQL = _hand_out("agency_tenant_id", "agency_tenant_id")
HAND_OUT_COLLECTOR_SQL = _hand_out("assignee_user_id", "user_id")
