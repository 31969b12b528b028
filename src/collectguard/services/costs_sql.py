"""Bulk reads and writes of the cost stage (``services/costs``), on the caller's connection.

A million loans with six installments each are seven million rows; fetched as Python tuples
they cost more than the pricing itself. So each window of loan ids comes back as a handful of
values the driver hands over in one piece, decoded by numpy:

* SQLite: one row per query of ``group_concat`` texts (ids and amounts as decimal lists, dates as
  their stored ``YYYY-MM-DD`` text run together, ten characters each, which numpy decodes far
  faster than SQLite's ``julianday`` computes). Text of another length makes the window fall
  back to ``julianday`` (one row per installment: slow, exact); a ten-character text that is not
  such a date leaves its loan to the scalar method. When most loans of the window are to be
  priced, the installments are read in rowid order over the window's rowid range, checked
  against the ``(loan_id, seq)`` index's count; otherwise through that index.
* PostgreSQL: one ``string_agg`` of ``int8send`` per column, fetched in binary: big-endian
  8-byte integers run together, which numpy reads as they are.

The APRs go back in one statement per window: on PostgreSQL ``UPDATE ... FROM unnest(ids, aprs)``;
on SQLite, which has no array parameter, one blob of fixed-width decimal cells indexed by
``id - lo``, read back with ``substr`` (a byte offset into a blob: constant time). Values that do
not fit a cell (negative, or absurdly high) are written one by one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    Ints = NDArray[np.int64]

__all__ = ["MAX_INSTALLMENTS", "UNREADABLE", "Schedules", "read_window", "window_end", "write_aprs"]

#: The day number standing for a date the bulk read could not read (the scalar path prices the loan).
UNREADABLE = -(2**40)

#: Below this share of pending loans in an id window, SQLite reads the window's installments
#: through the ``(loan_id, seq)`` index; above it, one scan of the table in rowid order is cheaper
#: (an index walk visits each row out of order).
DENSE_SHARE = 0.25
#: Installments read in one window at most (about 50 MB of text on SQLite).
MAX_INSTALLMENTS = 3_000_000
_CELL = 12  # decimal digits per APR cell of the SQLite blob: up to 99,999,999.9999 %
_NONE = b"-"  # first byte of a cell without a value
_DIGIT_AT = (True, True, True, True, False, True, True, False, True, True)  # YYYY-MM-DD


@dataclass(frozen=True)
class Schedules:
    """A window's loans without an APR (ascending ids) and the installments read with them.

    Installments may include other loans' (the caller keeps those of ``ids``); amounts are cents,
    dates day numbers since 1970-01-01.
    """

    ids: Ints
    principal: Ints
    fees: Ints
    advance: Ints
    loan_of: Ints
    due: Ints
    amount: Ints


def _pending(dialect: str, lender_types: tuple[str, ...] | None) -> str:
    lo, hi = (":lo", ":hi") if dialect == "sqlite" else ("%(lo)s", "%(hi)s")
    where = f"l.apr IS NULL AND l.id >= {lo} AND l.id < {hi}"
    if lender_types:  # checked against LenderType by the caller (loan_apr_fill)
        where += " AND l.lender_type IN (" + ", ".join(f"'{x}'" for x in lender_types) + ")"
    return where


def read_window(s: Session, window: dict[str, int], lender_types: tuple[str, ...] | None) -> Callable[[], Schedules]:
    """Read the loans without an APR in ``window`` (``lo`` <= id < ``hi``) and their installments;
    returns the decoding into :class:`Schedules` (numpy only: any thread may run it)."""
    driver = s.connection().connection.driver_connection
    if s.get_bind().dialect.name == "sqlite":
        return _sqlite_read(driver, window, lender_types)
    schedules = _postgres_read(driver, window, lender_types)
    return lambda: schedules


def window_end(s: Session, lo: int, end: int, chunk: int) -> int:
    """The end of the window starting at ``lo``: ``chunk`` loan ids, fewer when their installments
    would pass ``MAX_INSTALLMENTS`` (long schedules: the texts and arrays of a window stay bounded,
    and within SQLite's and PostgreSQL's 1 GB value limit), at least one loan."""
    hi = min(lo + chunk, end)
    count = text("SELECT count(*) FROM installment WHERE loan_id >= :lo AND loan_id < :hi")
    while hi - lo > 1 and s.execute(count, {"lo": lo, "hi": hi}).scalar_one() > MAX_INSTALLMENTS:
        hi = lo + (hi - lo) // 2
    return hi


def write_aprs(s: Session, window: dict[str, int], ids: Ints, stored: Ints) -> None:
    """Set ``loan.apr`` (stored units) of ``ids`` (all inside ``window``) where it is still NULL."""
    import numpy as np

    if ids.size == 0:
        return
    if s.get_bind().dialect.name != "sqlite":
        s.execute(
            text(
                "UPDATE loan SET apr = v.apr FROM unnest(CAST(:ids AS bigint[]), CAST(:aprs AS bigint[]))"
                " AS v(id, apr) WHERE loan.id = v.id AND loan.apr IS NULL"
            ),
            {"ids": ids.tolist(), "aprs": stored.tolist()},
        )
        return
    fits = (stored >= 0) & (stored < 10**_CELL)
    lo = window["lo"]
    cells = np.full((window["hi"] - lo, _CELL), ord(_NONE), dtype=np.uint8)
    digits = stored[fits][:, None] // 10 ** np.arange(_CELL - 1, -1, -1, dtype=np.int64) % 10
    cells[ids[fits] - lo] = digits + ord("0")
    at = f"(id - :lo) * {_CELL} + 1"
    s.execute(
        text(
            f"UPDATE loan SET apr = CAST(substr(:cells, {at}, {_CELL}) AS INTEGER) "  # noqa: S608
            f"WHERE id >= :lo AND id < :hi AND apr IS NULL AND substr(:cells, {at}, 1) <> :none"
        ),
        {"cells": cells.tobytes(), "lo": lo, "hi": window["hi"], "none": _NONE},
    )
    rest = ~fits
    if rest.any():
        s.execute(
            text("UPDATE loan SET apr = :apr WHERE id = :id AND apr IS NULL"),
            [{"id": int(i), "apr": int(a)} for i, a in zip(ids[rest], stored[rest], strict=True)],
        )


# --- SQLite ------------------------------------------------------------------------------------


def _sqlite_read(con: Any, window: dict[str, int], lender_types: tuple[str, ...] | None) -> Callable[[], Schedules]:
    import numpy as np

    pending = _pending("sqlite", lender_types)
    sql = f"SELECT count(*), group_concat(l.id), group_concat(l.principal), group_concat(l.upfront_fees), group_concat(l.disbursed_on, '') FROM loan l WHERE {pending}"  # noqa: E501, S608
    count, ids, principal, fees, disbursed = con.execute(sql, window).fetchone()
    advance_text = _iso_text(disbursed, count)
    if advance_text is None:  # a date stored in another shape: julianday's reading
        joined = f"group_concat(coalesce({_julian('l.disbursed_on')}, {UNREADABLE}))"
        advance_days = con.execute(f"SELECT {joined} FROM loan l WHERE {pending}", window).fetchone()[0]  # noqa: S608
    query = (
        "SELECT count(*), group_concat(i.loan_id), group_concat(i.due_date, ''), "
        "group_concat(i.principal_due + i.interest_due + i.fee_due) FROM {}"
    )
    if count < DENSE_SHARE * (window["hi"] - window["lo"]):
        source, params = f"installment i JOIN loan l ON l.id = i.loan_id WHERE {pending}", window
        n, loan_of, due, amount = con.execute(query.format(source), params).fetchone()
    else:
        source, params, (n, loan_of, due, amount) = _sqlite_scan(con, query, window)
    due_text = _iso_text(due, n)
    table = None
    if due_text is None:  # the same for the installments: one row each
        rows = con.execute(
            f"SELECT i.loan_id, {_julian('i.due_date')}, "  # noqa: S608
            f"i.principal_due + i.interest_due + i.fee_due FROM {source}",
            params,
        ).fetchall()
        table = np.array([(a, UNREADABLE if d is None else d, c) for a, d, c in rows], dtype=np.int64).reshape(-1, 3)

    def decode() -> Schedules:
        loans = (_ints(ids, count), _ints(principal, count), _ints(fees, count))
        advance = _iso_days(advance_text, count) if advance_text is not None else _ints(advance_days, count)
        if table is not None:
            return Schedules(*loans, advance, table[:, 0], table[:, 1], table[:, 2])
        return Schedules(*loans, advance, _ints(loan_of, n), _iso_days(due_text or b"", n), _ints(amount, n))

    return decode


def _sqlite_scan(con: Any, query: str, window: dict[str, int]) -> tuple[str, dict[str, int], tuple[Any, ...]]:
    """``query`` over the installments of every loan of the window, read in rowid order (unary
    ``+`` keeps SQLite off the ``(loan_id, seq)`` index; other loans' rows are dropped later); the
    source and parameters it used, and its row.

    Installments are usually stored loan by loan, so the rows lie between the rowids of the
    window's first and last installment in index order: only that range is scanned, and the rows
    found are checked against the index's count; otherwise the whole table is scanned.
    """
    first = con.execute(
        "SELECT id FROM installment WHERE loan_id >= :lo ORDER BY loan_id, seq LIMIT 1", window
    ).fetchone()
    last = con.execute(
        "SELECT id FROM installment WHERE loan_id < :hi ORDER BY loan_id DESC, seq DESC LIMIT 1", window
    ).fetchone()
    by_loan = "+i.loan_id >= :lo AND +i.loan_id < :hi"
    if first is not None and last is not None and first[0] <= last[0]:
        source = f"installment i WHERE i.id >= :first AND i.id <= :last AND {by_loan}"
        params = {**window, "first": first[0], "last": last[0]}
        row = con.execute(query.format(source), params).fetchone()
        total = con.execute(
            "SELECT count(*) FROM installment WHERE loan_id >= :lo AND loan_id < :hi", window
        ).fetchone()[0]
        if row[0] == total:
            return source, params, row
    source = f"installment i WHERE {by_loan}"
    return source, window, con.execute(query.format(source), window).fetchone()


def _julian(col: str) -> str:
    # Only text that starts as an ISO date: julianday reads a bare number as a Julian day number.
    return (
        f"CASE WHEN {col} GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' "
        f"THEN CAST(julianday({col}) - 2440587.5 AS INTEGER) END"
    )


def _ints(joined: str | None, count: int) -> Ints:
    import numpy as np

    if not count:
        return np.zeros(0, dtype=np.int64)
    out = np.fromstring(joined or "", dtype=np.int64, sep=",")
    if out.size != count:
        raise ValueError(f"expected {count} integers, decoded {out.size}")
    return out


def _iso_text(joined: str | None, count: int) -> bytes | None:
    """``count`` dates run together as bytes, when they are ten characters each (the stored
    ``YYYY-MM-DD``); None for text of another length (a date stored in another shape)."""
    raw = (joined or "").encode("ascii", "replace")
    return raw if len(raw) == 10 * count else None


def _iso_days(raw: bytes, count: int) -> Ints:
    """Day numbers of ``count`` ten-character dates run together; ``UNREADABLE`` for any that is
    not a ``YYYY-MM-DD`` date (a character out of place, an impossible month or day)."""
    import numpy as np

    from collectguard.domain.daynum import month_starts

    if not count:
        return np.zeros(0, dtype=np.int64)
    chars = np.frombuffer(raw, dtype=np.uint8).reshape(count, 10)
    digits = chars - np.uint8(ord("0"))  # uint8: every character but a digit lands above 9
    bad = ((digits <= 9) != _DIGIT_AT).any(axis=1) | (chars[:, 4] != ord("-")) | (chars[:, 7] != ord("-"))
    d = [np.where(bad, 1, digits[:, k]).astype(np.int64) for k in range(10)]  # a bad row reads 1111-11-11
    month = d[5] * 10 + d[6]
    day = d[8] * 10 + d[9]
    bad |= (month < 1) | (month > 12) | (day < 1)
    first, length = month_starts((d[0] * 1000 + d[1] * 100 + d[2] * 10 + d[3]) * 12 + np.where(bad, 0, month - 1))
    bad |= day > length
    out: Ints = np.where(bad, UNREADABLE, first + day - 1)
    return out


# --- PostgreSQL --------------------------------------------------------------------------------


def _postgres_read(con: Any, window: dict[str, int], lender_types: tuple[str, ...] | None) -> Schedules:
    pending = _pending("postgresql", lender_types)
    loans = _agg_int8(
        con,
        "l.id",
        "l.principal",
        "l.upfront_fees",
        "l.disbursed_on - DATE '1970-01-01'",
        source=f"loan l WHERE {pending}",
        window=window,
    )
    inst = _agg_int8(
        con,
        "i.loan_id",
        "i.due_date - DATE '1970-01-01'",
        "i.principal_due + i.interest_due + i.fee_due",
        source=f"installment i JOIN loan l ON l.id = i.loan_id WHERE {pending}",
        window=window,
    )
    return Schedules(*loans, *inst)


def _agg_int8(con: Any, *columns: str, source: str, window: dict[str, int]) -> list[Ints]:
    """``columns`` over the rows of ``source``, each as one bytea of big-endian int8s (``int8send``
    run together by ``string_agg``), fetched in binary and read by numpy: no text either side."""
    import numpy as np

    aggs = ", ".join(f"string_agg(int8send(({c})::int8), ''::bytea)" for c in columns)
    with con.cursor() as cur:
        cur.execute(f"SELECT count(*), {aggs} FROM {source}", window, binary=True)  # noqa: S608
        count, *values = cur.fetchone()
    out = [np.frombuffer(v or b"", dtype=">i8").astype(np.int64) for v in values]
    if any(a.size != count for a in out):  # string_agg skips NULLs: none are expected
        raise ValueError(f"expected {count} values per column")
    return out
