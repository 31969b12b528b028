"""CSV import (DESIGN §9): validate a whole file, then insert it in one transaction, or nothing.

The file is read once: its SHA-256 goes into the audit record (never its contents), its text is
decoded as UTF-8 with or without the BOM Excel writes. Every row is checked, references included,
before anything is written; a file with any bad row raises :class:`ImportRejected` listing each bad
row as ``{row, column, reason}`` where ``row`` is the line in the file (the header is row 1).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collectguard.adapters.db.models import Borrower, Consent, Contact, Installment, Loan, Payment
from collectguard.bootstrap import Container
from collectguard.errors import BadInput, ImportRejected
from collectguard.services.audit import audit_append
from collectguard.services.import_common import Batch, Row, Ticker, bulk_insert
from collectguard.services.import_loans import prepare_installments, prepare_loans, prepare_payments
from collectguard.services.import_people import prepare_borrowers, prepare_consents, prepare_contacts
from collectguard.services.tenancy import tenant_ensure

Progress = Callable[[str, int], Callable[[int], None]]


@dataclass(frozen=True)
class KindSpec:
    required: tuple[str, ...]
    optional: tuple[str, ...]
    prepare: Callable[[Batch, list[Row], Ticker], list[dict[str, Any]]]
    table: Any

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional


KINDS: dict[str, KindSpec] = {
    "borrowers": KindSpec(("borrower_id", "name", "phone", "jurisdiction", "timezone"),
                          ("id_number", "language"), prepare_borrowers, Borrower),
    "loans": KindSpec(("loan_id", "borrower_id", "lender_type", "principal", "currency", "annual_rate",
                       "disbursed_on"), ("upfront_fees", "lpr_at_signing"), prepare_loans, Loan),
    "installments": KindSpec(("loan_id", "seq", "due_date", "principal_due", "interest_due"), ("fee_due",),
                             prepare_installments, Installment),
    "payments": KindSpec(("loan_id", "paid_on", "amount"), (), prepare_payments, Payment),
    "contacts": KindSpec(("borrower_id", "contact_id", "name", "phone", "relation", "source"), (),
                         prepare_contacts, Contact),
    "consents": KindSpec(("borrower_id", "kind", "form", "given_at"), ("clause_version", "withdrawn_at"),
                         prepare_consents, Consent),
}


def decode_csv_bytes(data: bytes) -> str:
    """UTF-8 text without the BOM; anything else is refused with advice on how to re-save it."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise BadInput("the file is UTF-16 (Excel 'Unicode text'); save it as 'CSV UTF-8' and import again")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        try:
            data.decode("gb18030")
            guess = " It looks like GBK/GB18030, the default of Excel on Chinese Windows."
        except UnicodeDecodeError:
            guess = ""
        raise BadInput(f"the file is not UTF-8 (byte 0x{data[exc.start]:02x}).{guess} "
                       "Save it as 'CSV UTF-8' and import again.", line=line) from None


def _header(raw: list[str], spec: KindSpec, kind: str) -> list[str]:
    header = [h.strip() for h in raw]
    while header and not header[-1]:  # Excel sometimes writes trailing empty columns
        header.pop()
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for name in header:
        if name in seen:
            errors.append({"row": 1, "column": name, "reason": "column appears twice in the header"})
        elif name not in spec.columns:
            errors.append({"row": 1, "column": name or "(empty)",
                           "reason": f"unknown column for {kind}; expected {','.join(spec.columns)}"})
        seen.add(name)
    for name in spec.required:
        if name not in seen:
            errors.append({"row": 1, "column": name, "reason": "required column is missing from the header"})
    if errors:
        names = ", ".join(str(e["column"]) for e in errors)
        raise ImportRejected(f"row 1: the header of this {kind} file is wrong ({names}); nothing imported",
                             errors=errors)
    return header


def _rows(text: str, spec: KindSpec, kind: str) -> tuple[list[Row], list[dict[str, Any]]]:
    """(line, {column: cell}) for each non-blank data row, and the rows with a wrong field count."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[Row] = []
    errors: list[dict[str, Any]] = []
    try:
        first = next(reader, None)
        if first is None:
            raise BadInput(f"the file is empty; expected a header row: {','.join(spec.columns)}")
        header = _header(first, spec, kind)
        width, last = len(header), reader.line_num
        for cells in reader:
            line, last = last + 1, reader.line_num  # a quoted cell may span lines: report where it starts
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > width and not any(c.strip() for c in cells[width:]):
                cells = cells[:width]
            if len(cells) != width:
                column = header[len(cells)] if len(cells) < width else f"(extra field {width + 1})"
                errors.append({"row": line, "column": column,
                               "reason": f"expected {width} fields, found {len(cells)}"})
                continue
            rows.append((line, dict(zip(header, cells, strict=True))))
    except csv.Error as exc:
        raise BadInput(f"not a readable CSV file: {exc}", line=reader.line_num) from None
    return rows, errors


def _reject(kind: str, errors: list[dict[str, Any]]) -> None:
    errors.sort(key=lambda e: (e["row"], str(e["column"])))
    bad_rows = len({e["row"] for e in errors})
    first = errors[0]
    raise ImportRejected(
        f"{bad_rows} bad row{'s' if bad_rows != 1 else ''} in this {kind} file, nothing imported; "
        f"first: row {first['row']}, column {first['column']}: {first['reason']}", errors=errors)


def import_csv(c: Container, *, kind: str, path: Path, tenant_code: str, progress: Progress,
               actor: str = "cli") -> dict[str, Any]:
    """Import one CSV file of ``kind`` into the tenant ``tenant_code`` (created when missing).

    All or nothing: any bad row raises :class:`ImportRejected` listing every bad row and nothing is
    stored; otherwise all rows are inserted in one transaction with one audit record (kind, file
    name, row count, SHA-256 of the file). ``progress(description, total)`` returns ``advance(n)``.
    Returns ``{"kind", "rows", "tenant"}``.
    """
    spec = KINDS.get(kind)
    if spec is None:
        raise BadInput(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}", field="kind")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BadInput(f"no such file: {path}", field="path") from None
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}", field="path") from None
    digest = hashlib.sha256(data).hexdigest()
    rows, shape_errors = _rows(decode_csv_bytes(data), spec, kind)
    now = c.clock()
    with c.uow() as session:
        tenant = tenant_ensure(session, code=tenant_code, actor=actor, now=now)
        batch = Batch(session=session, tenant_id=tenant.id, cipher=c.cipher, now=now, file_sha256=digest,
                      errors=shape_errors)
        ticker = Ticker(progress(f"validating {kind}", len(rows)))
        records = spec.prepare(batch, rows, ticker)
        ticker.flush()
        if batch.errors:
            _reject(kind, batch.errors)
        bulk_insert(session, spec.table, records, progress(f"importing {kind}", len(records)))
        audit_append(session, tenant_id=tenant.id, actor=actor, action="data.import",
                     subject=f"import:{kind}", now=now,
                     payload={"kind": kind, "file": path.name, "rows": len(records), "sha256": digest})
    return {"kind": kind, "rows": len(records), "tenant": tenant_code}
