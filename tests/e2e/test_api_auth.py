"""Authentication, sessions, CSRF and rate limits through the real app (TestClient), both backends.

``test_every_non_public_route_requires_authentication`` walks every route the app has, so routes
added later are held to the same rule without anyone remembering to add a test.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest
from argon2 import PasswordHasher
from fastapi import Depends, Form
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from collectguard.api.app import create_app
from collectguard.api.deps import PrincipalDep, is_public
from collectguard.api.ratelimit import assess_rate_limit
from collectguard.bootstrap import Container
from collectguard.services import accounts
from conftest import FIXED_NOW, create_database, make_container

PASSWORD = "correct horse battery"
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request, tmp_path_factory):
    database = create_database(request.param, tmp_path_factory)
    yield database
    database.close()


@pytest.fixture(scope="module")
def world(db):
    """A lender with a collector (alice), an auditor token and a token of a disabled user."""
    with pytest.MonkeyPatch.context() as mp:
        # Cheap argon2 for the module: the tests sign in often, the cost is not what they check.
        mp.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=256, parallelism=1))
        mp.setattr(accounts, "_dummy_hash", None)
        c = make_container(db, log_json=False, log_level="WARNING")
        tokens = {}
        with c.uow() as s:
            for name, role in (("alice", "collector"), ("dora", "team_lead")):
                accounts.user_create(s, tenant_code="acme", username=name, role=role, password=PASSWORD,
                                     create_tenant=True, actor="test", now=FIXED_NOW)
            def token(role, **kw):
                return accounts.token_create(s, tenant_code="acme", role=role, actor="test", now=FIXED_NOW,
                                             **kw)

            _r, tokens["alice"] = token("collector", username="alice")
            _r, tokens["short"] = token("auditor", expires_days=1)
            row, tokens["revoked"] = token("auditor")
            accounts.token_revoke(s, token_id=row.id, actor="test", now=FIXED_NOW)
            _r, tokens["dora"] = token("team_lead", username="dora")
            accounts.user_disable(s, username="dora", actor="test", now=FIXED_NOW)
        yield c, tokens


def build_app(container: Container):
    app = create_app(container)

    # Stand-ins for the routes other features add: a protected write, a protected page, a limited one.
    @app.post("/api/v1/test-write")
    def _write(principal: PrincipalDep, note: str = Form("")) -> dict[str, str]:
        return {"actor": principal.actor, "note": note}

    @app.get("/test-page")
    def _page(principal: PrincipalDep) -> dict[str, str]:
        return {"role": principal.role}

    @app.get("/api/v1/test-limited", dependencies=[Depends(assess_rate_limit)])
    def _limited() -> dict[str, bool]:
        return {"ok": True}

    return app


@pytest.fixture
def app(world):
    return build_app(world[0])


@pytest.fixture
def client(app):
    return TestClient(app)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def csrf_from(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def sign_in(client: TestClient, username: str = "alice", password: str = PASSWORD, **extra):
    token = csrf_from(client.get("/signin").text)
    form = {"username": username, "password": password, "csrf_token": token, **extra}
    return client.post("/signin", data=form, follow_redirects=False)


# ---- deny by default --------------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [{}, bearer("not-a-token"), {"Authorization": "Basic YTpi"}],
                         ids=["none", "bad-token", "basic"])
def test_every_non_public_route_requires_authentication(app, client, headers):
    routes = [rc for rc in iter_route_contexts(app.routes)
              if rc.path and rc.methods and not is_public(rc.path)]
    protected = sorted({(rc.path, m) for rc in routes for m in rc.methods if m not in ("HEAD", "OPTIONS")})
    assert ("/api/v1/me", "GET") in protected and ("/api/v1/test-write", "POST") in protected
    for path, method in protected:
        url = re.sub(r"\{[^}]+\}", "1", path)
        resp = client.request(method, url, headers=headers)
        assert resp.status_code == 401, (method, path, resp.status_code, resp.text[:200])
        assert resp.headers["www-authenticate"].startswith("Bearer")
        assert resp.headers["content-type"].startswith(PROBLEM)
        assert resp.json()["code"] == "unauthenticated"


def test_public_endpoints_need_no_authentication(client):
    assert client.get("/health").status_code == 200
    # /api/v1/assess belongs to another feature: whatever it answers, it is never "sign in first".
    assert client.post("/api/v1/assess", json={"text": "晚上十一点给我打电话催收"}).status_code != 401
    for path in ("/", "/signin", "/openapi.json", "/docs", "/static/app.css"):
        assert client.get(path).status_code == 200, path


def test_openapi_declares_bearer_auth(client):
    schema = client.get("/openapi.json").json()
    assert any(s.get("scheme") == "bearer" for s in schema["components"]["securitySchemes"].values())
    assert schema["paths"]["/api/v1/me"]["get"]["security"]


# ---- bearer tokens ----------------------------------------------------------------------------------

def test_me_with_a_token(client, world):
    resp = client.get("/api/v1/me", headers=bearer(world[1]["alice"]))
    assert resp.status_code == 200
    body = resp.json()
    assert (body["tenant"], body["role"], body["username"]) == ("acme", "collector", "alice")
    assert "guard.check" in body["permissions"] and "contact_list.read" not in body["permissions"]


@pytest.mark.parametrize("which", ["revoked", "dora"])
def test_revoked_tokens_and_disabled_users_are_refused(client, world, which):
    assert client.get("/api/v1/me", headers=bearer(world[1][which])).status_code == 401


def test_expired_token_is_refused(world):
    container, tokens = world
    now = TestClient(build_app(container))
    assert now.get("/api/v1/me", headers=bearer(tokens["short"])).status_code == 200
    later = dataclasses.replace(container, clock=lambda: FIXED_NOW + dt.timedelta(days=1, seconds=1))
    resp = TestClient(build_app(later)).get("/api/v1/me", headers=bearer(tokens["short"]))
    assert resp.status_code == 401 and resp.headers["www-authenticate"].startswith("Bearer")


def test_bearer_writes_need_no_csrf_token(client, world):
    resp = client.post("/api/v1/test-write", headers=bearer(world[1]["alice"]), data={"note": "hi"})
    assert resp.status_code == 200 and resp.json()["note"] == "hi"


# ---- web sessions and CSRF --------------------------------------------------------------------------

def test_sign_in_page_speaks_chinese_by_default_and_english_on_request(client):
    assert "用户名" in client.get("/signin").text
    assert "Username" in client.get("/signin?lang=en").text


def test_session_cookie_signs_in_and_sign_out_revokes_it_on_the_server(client):
    resp = sign_in(client)
    assert resp.status_code == 303 and resp.headers["location"] == "/work"
    cookie = resp.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower() and "Secure" not in cookie
    stolen = client.cookies.get("cg_session")
    assert client.get("/api/v1/me").json()["username"] == "alice"

    page = client.get("/signin")
    assert "alice" in page.text
    out = client.post("/signout", data={"csrf_token": csrf_from(page.text)}, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/api/v1/me").status_code == 401
    replay = TestClient(client.app, cookies={"cg_session": stolen})
    assert replay.get("/api/v1/me").status_code == 401


def test_wrong_password_is_401_with_the_form_again(client):
    resp = sign_in(client, password="not the password")
    assert resp.status_code == 401 and "用户名或密码错误" in resp.text
    assert "cg_session" not in client.cookies


def test_sign_in_without_csrf_token_is_403(client):
    client.get("/signin")
    resp = client.post("/signin", data={"username": "alice", "password": PASSWORD}, follow_redirects=False)
    assert resp.status_code == 403 and "cg_session" not in client.cookies


def test_a_csrf_token_from_another_browser_is_useless(app):
    attacker, victim = TestClient(app), TestClient(app)
    token = csrf_from(attacker.get("/signin").text)
    victim.get("/signin")
    resp = victim.post("/signin", data={"username": "alice", "password": PASSWORD, "csrf_token": token},
                       follow_redirects=False)
    assert resp.status_code == 403


def test_cookie_authenticated_writes_need_the_csrf_token(client):
    sign_in(client)
    denied = client.post("/api/v1/test-write", data={"note": "x"})
    assert denied.status_code == 403 and denied.headers["content-type"].startswith(PROBLEM)
    token = csrf_from(client.get("/signin").text)
    assert client.post("/api/v1/test-write", data={"note": "x", "csrf_token": token}).status_code == 200
    assert client.post("/api/v1/test-write", headers={"X-CSRF-Token": token}).status_code == 200
    assert client.post("/api/v1/test-write", headers={"X-CSRF-Token": token[:-2] + "xx"}).status_code == 403


def test_tampered_session_cookie_is_401(app):
    client = TestClient(app)
    sign_in(client)
    value = client.cookies.get("cg_session")
    forged = TestClient(app, cookies={"cg_session": value[:-3] + "abc"})
    assert forged.get("/api/v1/me").status_code == 401


def test_browsers_are_sent_to_the_sign_in_page_and_back(client):
    resp = client.get("/test-page?x=1", headers={"Accept": "text/html"}, follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"] == "/signin?next=/test-page%3Fx%3D1"
    assert sign_in(client, next="/test-page?x=1").headers["location"] == "/test-page?x=1"


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example"])
def test_sign_in_never_redirects_off_site(client, target):
    assert sign_in(client, next=target).headers["location"] == "/work"


def test_production_cookies_are_secure_and_host_only(db):
    base = make_container(db, log_json=False, log_level="WARNING")
    # model_copy skips validation: the production secrets' checks are settings' business, not this test's.
    settings = base.settings.model_copy(update={"environment": "production", "secret_key": "s" * 40})
    prod = dataclasses.replace(base, settings=settings)
    client = TestClient(build_app(prod), base_url="https://testserver")
    resp = sign_in(client)
    assert resp.status_code == 303
    cookie = resp.headers["set-cookie"]
    assert cookie.startswith("__Host-cg_session=") and "Secure" in cookie and "HttpOnly" in cookie


# ---- rate limits ------------------------------------------------------------------------------------

def test_login_attempts_are_limited_per_address(client):
    statuses = [sign_in(client, password=f"guess number {i}").status_code for i in range(11)]
    assert statuses[:10] == [401] * 10 and statuses[10] == 429


def test_login_attempts_are_limited_per_username_across_addresses(app):
    for i in range(10):
        elsewhere = TestClient(app, client=(f"10.0.0.{i}", 4000))
        assert sign_in(elsewhere, password="wrong guess!").status_code == 401
    resp = sign_in(TestClient(app, client=("10.0.1.1", 4000)), password=PASSWORD)
    assert resp.status_code == 429
    assert resp.headers["content-type"].startswith(PROBLEM) and resp.json()["code"] == "rate_limited"
    assert 1 <= int(resp.headers["retry-after"]) <= 6


def test_the_assess_limit_comes_from_settings(db, world):
    settings = world[0].settings.model_copy(update={"assess_rate_limit_per_minute": 3})
    container = dataclasses.replace(world[0], settings=settings)
    client = TestClient(build_app(container))
    headers = bearer(world[1]["alice"])
    statuses = [client.get("/api/v1/test-limited", headers=headers).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
