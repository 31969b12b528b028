"""The one exception tree of collectguard, with stable error codes.

Every edge (CLI, HTTP API, web) turns these into its own shape through one handler:
the CLI prints ``error: <message>`` on stderr and exits with ``exit_code``; the API answers
RFC 9457 problem+json with ``status`` and ``code``.

    CollectguardError                 code            CLI  HTTP
    ├── BadInput                      bad_input        2    422   malformed input, names field/line/row
    │   └── ImportRejected            import_rejected  2    422   a CSV file with bad rows (all listed)
    ├── NotFound                      not_found        2    404   unknown or foreign id (never says which)
    ├── Unauthenticated               unauthenticated  2    401
    ├── Forbidden                     forbidden        2    403   authenticated but not allowed
    ├── Denied                        denied           0    403   the guard denied a contact (carries the decision)
    ├── Conflict                      conflict         2    409
    ├── IntegrityFault                integrity_fault  1    409   a check found a fault (audit chain broken)
    └── Unavailable                   unavailable      1    503   a dependency (database, broker) is unreachable
"""

from __future__ import annotations

from typing import Any


class CollectguardError(Exception):
    code = "error"
    exit_code = 2
    http_status = 400
    title = "Error"

    def __init__(self, message: str, *, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail or {}


class BadInput(CollectguardError):
    """Input that cannot be used as it is. ``field`` names the offending field (dotted path)."""

    code = "bad_input"
    http_status = 422
    title = "Bad input"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        line: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        where = []
        if line is not None:
            where.append(f"line {line}")
        if field:
            where.append(f"field {field!r}")
        full = f"{', '.join(where)}: {message}" if where else message
        d = dict(detail or {})
        if field:
            d["field"] = field
        if line is not None:
            d["line"] = line
        super().__init__(full, detail=d)
        self.field = field
        self.line = line


class ImportRejected(BadInput):
    """A file with bad rows; ``errors`` lists every bad row as {row, column, reason}."""

    code = "import_rejected"
    title = "Import rejected"

    def __init__(self, message: str, *, errors: list[dict[str, Any]]) -> None:
        super().__init__(message, detail={"errors": errors})
        self.errors = errors


class NotFound(CollectguardError):
    code = "not_found"
    http_status = 404
    title = "Not found"


class Unauthenticated(CollectguardError):
    code = "unauthenticated"
    http_status = 401
    title = "Authentication required"


class Forbidden(CollectguardError):
    code = "forbidden"
    http_status = 403
    title = "Forbidden"


class Denied(CollectguardError):
    """The guard refused a contact. ``decision`` is the decision as a JSON-able dict."""

    code = "denied"
    exit_code = 0
    http_status = 403
    title = "Contact denied by the guard"

    def __init__(self, message: str, *, decision: dict[str, Any], **extra: Any) -> None:
        super().__init__(message, detail={"decision": decision, **extra})
        self.decision = decision


class Conflict(CollectguardError):
    code = "conflict"
    http_status = 409
    title = "Conflict"


class IntegrityFault(CollectguardError):
    code = "integrity_fault"
    exit_code = 1
    http_status = 409
    title = "Integrity fault"


class Unavailable(CollectguardError):
    code = "unavailable"
    exit_code = 1
    http_status = 503
    title = "Service unavailable"
