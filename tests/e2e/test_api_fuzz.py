"""schemathesis over the whole OpenAPI document: no request, valid or not, is ever answered with a 5xx.

Runs against the real ASGI app on a demo-seeded SQLite database, as an admin, as a compliance officer (who
may act on many routes, so requests get past the permission check into the services) and unauthenticated.
Every operation in ``/openapi.json`` is fuzzed, so routes added later are covered without anyone listing them.

Each operation gets schema-valid (positive) and schema-violating (negative) requests from schemathesis'
Hypothesis strategies, driven here with ``@given`` rather than schemathesis' pytest plugin (its lazy
``from_fixture`` loader does not run under pytest 9). Bounded for CI: ``EXAMPLES`` per operation and caller,
derandomized (the same requests on every run), no Hypothesis example database.
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from collectguard.api.app import create_app
from collectguard.services import accounts
from collectguard.services.demo import DEMO_LENDER, demo_seed
from conftest import FIXED_NOW, create_database, make_container

# Requests per operation: the compliance officer gets furthest into the services, the anonymous caller
# only meets the authentication gate. About 64 operations x 12 = 770 requests, under a minute on 2 cores.
EXAMPLES = {"compliance_officer": 6, "admin": 4, "anonymous": 2}


@pytest.fixture(scope="module")
def fuzz_world(tmp_path_factory):
    db = create_database("sqlite", tmp_path_factory)
    c = make_container(db, log_json=False, log_level="CRITICAL", assess_rate_limit_per_minute=0)
    demo_seed(c, loans=150, seed=11)
    with c.uow() as s:
        tokens = {role: accounts.token_create(s, tenant_code=DEMO_LENDER, role=role, actor="test", now=FIXED_NOW)[1]
                  for role in ("admin", "compliance_officer")}
    app = create_app(c)
    yield schemathesis.openapi.from_asgi("/openapi.json", app), tokens
    db.close()


def fuzz(schema, headers: dict[str, str], examples: int) -> tuple[int, list[str]]:
    """Fuzz every operation; returns (operations fuzzed, one line per operation that got a 5xx or raised)."""
    failures: list[str] = []
    count = 0
    for result in schema.get_all_operations():
        op = result.ok()  # an operation schemathesis cannot read is an error of the test, not skipped
        count += 1
        strategy = op.as_strategy(GenerationMode.POSITIVE) | op.as_strategy(GenerationMode.NEGATIVE)

        @settings(max_examples=examples, derandomize=True, database=None, deadline=None, print_blob=False,
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def one(case):
            response = case.call(headers=headers)
            case.validate_response(response, checks=[not_a_server_error], headers=headers)

        try:
            one()
        except (Exception, BaseExceptionGroup) as exc:  # the first falsifying request, shrunk by Hypothesis
            failures.append(f"{op.method.upper()} {op.path}: {type(exc).__name__}: {str(exc)[:600]}")
    return count, failures


@pytest.mark.parametrize("who", ["admin", "compliance_officer", "anonymous"])
def test_no_request_gets_a_server_error(fuzz_world, who):
    schema, tokens = fuzz_world
    headers = {"Authorization": f"Bearer {tokens[who]}"} if who in tokens else {}
    count, failures = fuzz(schema, headers, EXAMPLES[who])
    assert count >= 50  # the whole API, not a corner of it
    assert not failures, "\n\n".join(failures)


def test_the_check_catches_a_server_error(fuzz_world):
    """The harness itself: an operation that answers 500 is reported, so a green run means something."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    broken = FastAPI()

    @broken.get("/boom/{n}")
    def boom(n: int):
        return JSONResponse({"n": n}, status_code=500 if n % 2 == 0 else 200)

    count, failures = fuzz(schemathesis.openapi.from_asgi("/openapi.json", broken), {}, 10)
    assert count == 1 and len(failures) == 1 and failures[0].startswith("GET /boom/{n}")


def test_found_by_fuzzing_an_id_beyond_64_bits_is_a_bad_input_not_a_crash(fuzz_world):
    app = fuzz_world[0].app
    client = TestClient(app)
    headers = {"Authorization": f"Bearer {fuzz_world[1]['compliance_officer']}"}
    resp = client.post(f"/api/v1/cases/{2**64 + 7}/resume", headers=headers)  # SQLite: OverflowError on bind
    assert resp.status_code == 422 and resp.json()["code"] == "bad_input"


def test_a_postgresql_data_exception_is_a_bad_input():
    """SQLSTATE class 22 (a value out of range, too long for its column) is the request's fault: 422, not 503."""
    from fastapi import FastAPI
    from sqlalchemy.exc import DataError, OperationalError

    from collectguard.api import problems

    class PgError(Exception):
        def __init__(self, sqlstate: str) -> None:
            super().__init__("value too long for type character varying(64)")
            self.sqlstate = sqlstate

    app = FastAPI()
    problems.install(app)

    @app.get("/data/{state}")
    def data(state: str):
        raise DataError("UPDATE x", {}, PgError(state))

    @app.get("/down")
    def down():
        raise OperationalError("SELECT 1", {}, PgError("08006"))

    client = TestClient(app, raise_server_exceptions=False)
    assert client.get("/data/22001").status_code == 422 and client.get("/data/22003").json()["code"] == "bad_input"
    assert client.get("/data/23505").status_code == 503  # an integrity error is not the input's fault alone
    assert client.get("/down").status_code == 503
