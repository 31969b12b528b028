"""Shared machinery of the CSV importer: the batch with its error list, cell parsing, look-ups, inserts.

The importer validates a whole file before writing anything, so every helper here records problems
on the batch instead of raising: the clerk gets every bad row of a file in one answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from collectguard.adapters.crypto import PiiCipher
from collectguard.adapters.db.models import Borrower, Loan
from collectguard.domain.validation import InvalidValue

T = TypeVar("T")
Advance = Callable[[int], None]
Row = tuple[int, dict[str, str]]  # (line number in the file, cell text by column)

# Bounded IN lists: SQLite allows 32,766 parameters and PostgreSQL 65,535; 900 keeps statements small.
LOOKUP_CHUNK = 900
INSERT_CHUNK = 5_000
PROGRESS_STEP = 2_000


@dataclass
class Batch:
    """One file being imported: where it goes, the clock reading, and every problem found so far."""

    session: Session
    tenant_id: int
    cipher: PiiCipher
    now: dt.datetime
    file_sha256: str = ""
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def today(self) -> dt.date:
        """The latest calendar date anywhere (UTC+14): a date is "in the future" only after it.

        Lenders and borrowers span time zones; a repayment made this morning in Beijing is dated
        a day after the UTC date, and must not be refused as a future payment.
        """
        return (self.now.astimezone(dt.UTC) + dt.timedelta(hours=14)).date()

    def bad(self, row: int, column: str | None, reason: str) -> None:
        self.errors.append({"row": row, "column": column, "reason": reason})


class Cells:
    """Reads one row's cells through validators; each invalid cell is recorded, ``ok`` turns false."""

    __slots__ = ("_batch", "_values", "line", "ok")

    def __init__(self, batch: Batch, line: int, values: dict[str, str]) -> None:
        self._batch = batch
        self._values = values
        self.line = line
        self.ok = True

    def raw(self, column: str) -> str:
        return self._values.get(column, "").strip()

    def get(self, column: str, parse: Callable[[str], T]) -> T | None:
        """The parsed value of a required cell, or None after recording why it is unusable."""
        try:
            return parse(self._values.get(column, ""))
        except InvalidValue as exc:
            self.fail(column, exc.reason)
            return None

    def opt(self, column: str, parse: Callable[[str], T], default: T | None = None) -> T | None:
        """Like :meth:`get`, but an empty or absent cell gives ``default``."""
        if not self.raw(column):
            return default
        return self.get(column, parse)

    def fail(self, column: str | None, reason: str) -> None:
        self.ok = False
        self._batch.bad(self.line, column, reason)


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def first_seen(batch: Batch, rows: Iterable[tuple[int, Any]], *, column: str, what: str) -> None:
    """Record every repeat of a key within the file, naming the row where it first appeared."""
    seen: dict[Any, int] = {}
    for line, key in rows:
        if key in seen:
            batch.bad(line, column, f"{what} appears again in this file (first on row {seen[key]})")
        else:
            seen[key] = line


def existing_borrowers(batch: Batch, ext_ids: Iterable[str]) -> dict[str, tuple[int, str, str]]:
    """ext_id -> (id, jurisdiction, timezone) of this tenant's borrowers among ``ext_ids``."""
    found: dict[str, tuple[int, str, str]] = {}
    ids = sorted(set(ext_ids))
    for chunk in chunked(ids, LOOKUP_CHUNK):
        q = select(Borrower.ext_id, Borrower.id, Borrower.jurisdiction, Borrower.timezone).where(
            Borrower.tenant_id == batch.tenant_id, Borrower.ext_id.in_(chunk))
        for ext, id_, jur, tz in batch.session.execute(q):
            found[ext] = (id_, jur, tz)
    return found


def existing_loans(batch: Batch, ext_ids: Iterable[str]) -> dict[str, tuple[int, dt.date]]:
    """ext_id -> (id, disbursed_on) of this tenant's loans among ``ext_ids``."""
    found: dict[str, tuple[int, dt.date]] = {}
    ids = sorted(set(ext_ids))
    for chunk in chunked(ids, LOOKUP_CHUNK):
        q = select(Loan.ext_id, Loan.id, Loan.disbursed_on).where(
            Loan.tenant_id == batch.tenant_id, Loan.ext_id.in_(chunk))
        for ext, id_, disbursed in batch.session.execute(q):
            found[ext] = (id_, disbursed)
    return found


def existing_ext_ids(batch: Batch, table: Any, ext_ids: Iterable[str]) -> set[str]:
    """The subset of ``ext_ids`` already used by this tenant in ``table`` (which has ``ext_id``)."""
    taken: set[str] = set()
    ids = sorted(set(ext_ids))
    for chunk in chunked(ids, LOOKUP_CHUNK):
        q = select(table.ext_id).where(table.tenant_id == batch.tenant_id, table.ext_id.in_(chunk))
        taken.update(batch.session.scalars(q))
    return taken


def bulk_insert(session: Session, model: Any, records: Sequence[dict[str, Any]], advance: Advance) -> None:
    """Set-based insert of ``records`` (dicts with the same keys) into ``model``'s table, in chunks.

    The column types' bind processors run once per value (so Money and Rate become integer minor
    units exactly as the ORM would store them); the rows then go to the driver in bulk: ``COPY`` on
    PostgreSQL (about 20 times faster there than multi-row INSERTs), one ``executemany`` per chunk on
    SQLite. Any other backend takes SQLAlchemy's Core executemany.
    """
    if not records:
        return
    table = model.__table__
    conn = session.connection()
    dialect = conn.dialect
    cols = list(records[0])
    # Scalar column defaults (``default=False``) that Core would apply to absent keys.
    extras = {c.key: c.default.arg for c in table.columns
              if c.key not in records[0] and c.default is not None and c.default.is_scalar}
    if dialect.name not in ("postgresql", "sqlite") or (dialect.name == "postgresql"
                                                        and dialect.driver != "psycopg"):
        for chunk in chunked(records, INSERT_CHUNK):
            conn.execute(insert(table), list(chunk))
            advance(len(chunk))
        return
    prep = dialect.identifier_preparer
    if dialect.name == "sqlite":
        compiled = insert(table).compile(dialect=dialect, column_keys=cols + list(extras))
        sql = str(compiled).split(" RETURNING")[0]
        cols = list(compiled.positiontup or [])  # qmark parameters follow the table's column order
    else:
        cols += list(extras)
        names = ", ".join(prep.quote(k) for k in cols)
        sql = f"COPY {prep.format_table(table)} ({names}) FROM STDIN"
    procs = [(k, table.c[k].type.dialect_impl(dialect).bind_processor(dialect)) for k in cols]

    def tuples(chunk: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
        # Column by column: one comprehension per column is much cheaper than a generator per row.
        columns = []
        for k, proc in procs:
            values = [r[k] for r in chunk] if k in chunk[0] else [extras[k]] * len(chunk)
            if proc is not None:
                values = [None if x is None else proc(x) for x in values]
            columns.append(values)
        return list(zip(*columns, strict=True))

    if dialect.name == "sqlite":
        for chunk in chunked(records, INSERT_CHUNK):
            conn.exec_driver_sql(sql, tuples(chunk))
            advance(len(chunk))
        return
    raw = conn.connection.driver_connection
    assert raw is not None  # a checked-out pool connection always has its driver connection
    with raw.cursor() as cur:
        for chunk in chunked(records, INSERT_CHUNK):
            with cur.copy(sql) as cp:
                for t in tuples(chunk):
                    cp.write_row(t)
            advance(len(chunk))


def ids_by_ext_id(session: Session, model: Any, tenant_id: int, ext_ids: Sequence[str]) -> dict[str, int]:
    """ext_id -> id of the tenant's rows in ``model`` (to link children after a bulk insert)."""
    found: dict[str, int] = {}
    for chunk in chunked(list(ext_ids), LOOKUP_CHUNK):
        q = select(model.ext_id, model.id).where(model.tenant_id == tenant_id, model.ext_id.in_(chunk))
        found.update((e, i) for e, i in session.execute(q))
    return found


class Ticker:
    """Calls ``advance`` every PROGRESS_STEP rows instead of per row (a progress bar is not free)."""

    __slots__ = ("_advance", "_pending")

    def __init__(self, advance: Advance) -> None:
        self._advance = advance
        self._pending = 0

    def tick(self) -> None:
        self._pending += 1
        if self._pending >= PROGRESS_STEP:
            self._advance(self._pending)
            self._pending = 0

    def flush(self) -> None:
        if self._pending:
            self._advance(self._pending)
            self._pending = 0
