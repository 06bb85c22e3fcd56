"""Limits before work on tooltune's HTTP servers: bodies refused before they are read, the API's
token checked before a body is parsed, Host checked on loopback servers, X-Forwarded-For believed
only from configured proxies, publisher tokens checked for issuer, audience and lifetime, and
every refusal recorded with the client address."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from tests.publish.services import SECRET, write_service
from tooltune.publish import PublishConfig, create_app, issue_token

TOKEN = "api-token-for-the-security-suite"
TRAINING = "/mcp/training-dataset"
LOCAL = "http://127.0.0.1"


def asgi_call(app, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, dict, int]:
    """Call ``app`` directly; returns (status, JSON body, how many times it asked for the body)."""
    asked = 0

    async def receive() -> dict:
        nonlocal asked
        asked += 1
        return {"type": "http.request", "body": body, "more_body": False}

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "client": ("203.0.113.9", 5000),
             "server": ("127.0.0.1", 8600), "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(payload or b"{}"), asked


# -- the job API --------------------------------------------------------------------------------


@pytest.fixture
def make_api(tmp_path):
    from tooltune.api.app import create_app as create_api
    from tooltune.api.settings import ApiSettings

    def make(**fields: Any):
        settings = ApiSettings(**{"token": TOKEN, "registry_url": f"sqlite:///{tmp_path / 'registry.db'}",
                                  "work_dir": tmp_path / "work", **fields})
        return create_api(settings)

    return make


def test_an_unauthenticated_body_is_refused_before_it_is_read(make_api) -> None:
    app = make_api()
    declared = {"host": "127.0.0.1:8600", "content-type": "application/json", "content-length": str(60 << 20)}
    status, body, asked = asgi_call(app, "POST", "/v1/jobs", declared, b"{}")
    assert (status, asked) == (401, 0) and "bearer token" in body["detail"]
    # With the token, 60 MB declared is over the limit: refused before a byte is read too.
    status, body, asked = asgi_call(app, "POST", "/v1/jobs", {**declared, "authorization": f"Bearer {TOKEN}"}, b"{}")
    assert (status, asked) == (413, 0) and "over this server's limit of 1048576 bytes" in body["detail"]
    wrong = {**declared, "content-length": "2", "authorization": "Bearer guessed"}
    assert asgi_call(app, "POST", "/v1/datasets", wrong, b"{}")[::2] == (401, 0)


def test_a_streamed_body_is_cut_at_the_limit(make_api) -> None:
    client = TestClient(make_api(max_body_bytes=1000), base_url=LOCAL)

    def chunks():
        for _ in range(100):
            yield b" " * 100

    response = client.post("/v1/jobs", content=chunks(), headers={"authorization": f"Bearer {TOKEN}",
                                                                 "content-type": "application/json"})
    assert response.status_code == 413 and "limit of 1000 bytes" in response.json()["detail"]


@pytest.mark.parametrize("body", ["[" * 100_000 + "]" * 100_000, '{"n": ' + "9" * 100_000 + "}", "\xff\xfe"])
def test_hostile_bodies_are_4xx(make_api, body: str) -> None:
    client = TestClient(make_api(), base_url=LOCAL)
    response = client.post("/v1/jobs", content=body.encode("utf-8", "surrogateescape"),
                           headers={"authorization": f"Bearer {TOKEN}", "content-type": "application/json"})
    assert 400 <= response.status_code < 500


@pytest.mark.parametrize("host, status", [
    ("127.0.0.1:8600", 200), ("localhost", 200), ("[::1]:8600", 200),
    ("evil.example", 400), ("attacker.example:8600", 400), ("127.0.0.1.nip.io", 400), ("", 400),
])
def test_a_loopback_api_answers_only_its_own_names(make_api, host: str, status: int) -> None:
    client = TestClient(make_api(), base_url=LOCAL)
    response = client.get("/v1/stats", headers={"host": host})
    assert response.status_code == status, response.text
    if status == 400:
        assert "not one this server answers to" in response.json()["detail"]


def test_allowed_hosts_are_configurable(make_api) -> None:
    client = TestClient(make_api(allowed_hosts=["tooltune.internal"]), base_url=LOCAL)
    assert client.get("/v1/stats", headers={"host": "tooltune.internal:8600"}).status_code == 200
    assert client.get("/v1/stats", headers={"host": "localhost"}).status_code == 400
    public = TestClient(make_api(host="0.0.0.0", open_reads=True), base_url=LOCAL)  # behind its own proxy: any name
    assert public.get("/v1/stats", headers={"host": "api.example.com"}).status_code == 200


def test_refusals_are_logged_with_the_real_client(make_api, caplog) -> None:
    caplog.set_level(logging.WARNING, "tooltune.api.refused")
    client = TestClient(make_api(open_reads=False), base_url=LOCAL)
    forged = {"x-forwarded-for": "198.51.100.7"}
    assert client.get("/v1/stats", headers=forged).status_code == 401
    assert client.post("/v1/jobs", json={}, headers=forged).status_code == 401
    assert client.get("/v1/stats", headers={**forged, "host": "evil.example"}).status_code == 400
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3 and all("from testclient" in line for line in lines), lines  # not the forged address
    caplog.clear()
    proxied = TestClient(make_api(open_reads=False, trusted_proxies=["testclient"]), base_url=LOCAL)
    assert proxied.get("/v1/stats", headers=forged).status_code == 401
    assert "from 198.51.100.7" in caplog.records[0].getMessage()  # a configured proxy's word counts


# -- the publisher --------------------------------------------------------------------------------


@pytest.fixture
def make_publisher(tmp_path):
    folder = write_service(tmp_path, "shop")

    def make(**fields: Any):
        config = PublishConfig(**{"service": "shop", "data_dir": folder, "key": SECRET,
                                  "db_url": f"sqlite:///{tmp_path / 'audit.db'}", **fields})
        return create_app(config)

    return make


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": "tooltune", "aud": "shop", "sub": "orchestrator", "roles": ["ml_orchestrator"], "iat": now, "exp": now + 600}
    return {k: v for k, v in {**base, **changes}.items() if v is not None}


@pytest.mark.parametrize("changes, words", [
    (lambda now: {"iss": None}, "no 'iss' claim"),
    (lambda now: {"iss": "someone-else"}, "issuer (iss) is not 'tooltune'"),
    (lambda now: {"aud": None}, "no 'aud' claim"),
    (lambda now: {"aud": "calendar"}, "audience (aud) is not 'shop'"),
    (lambda now: {"aud": ["calendar", "weather"]}, "audience (aud) is not 'shop'"),
    (lambda now: {"iat": None}, "no 'iat' claim"),
    (lambda now: {"exp": None}, "no 'exp' claim"),
    (lambda now: {"exp": now + 10 * 365 * 86400}, "over this publisher's maximum of 86400 s"),
    (lambda now: {"iat": now - 100, "exp": now + 86400}, "over this publisher's maximum"),
    (lambda now: {"iat": now + 3600, "exp": now + 7200}, "invalid token"),  # issued in the future
])
def test_tokens_need_issuer_audience_and_a_bounded_lifetime(make_publisher, changes, words) -> None:
    client = TestClient(make_publisher(), base_url=LOCAL)
    token = jwt.encode(claims(**changes(int(time.time()))), SECRET, algorithm="HS256")
    response = client.get(TRAINING, headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 401 and words in response.json()["detail"], response.text


def test_a_token_for_several_services_and_configured_rules(make_publisher) -> None:
    client = TestClient(make_publisher(), base_url=LOCAL)
    several = jwt.encode(claims(aud=["calendar", "shop"]), SECRET, algorithm="HS256")
    assert client.get(TRAINING, headers={"authorization": f"Bearer {several}"}).status_code == 200
    custom = TestClient(make_publisher(issuer="idp.example", audience="shop-data", max_token_lifetime_s=60), base_url=LOCAL)
    ok = issue_token(SECRET, subject="o", roles=["ml_orchestrator"], audience="shop-data", issuer="idp.example", ttl_s=60)
    long = issue_token(SECRET, subject="o", roles=["ml_orchestrator"], audience="shop-data", issuer="idp.example", ttl_s=61)
    assert custom.get(TRAINING, headers={"authorization": f"Bearer {ok}"}).status_code == 200
    assert custom.get(TRAINING, headers={"authorization": f"Bearer {long}"}).status_code == 401


def test_forged_algorithms_are_refused(make_publisher) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    client = TestClient(make_publisher(key=public_pem, algorithm="RS256"), base_url=LOCAL)
    header = {"alg": "none", "typ": "JWT"}
    unsigned = ".".join(jwt.utils.base64url_encode(json.dumps(part).encode()).decode() for part in (header, claims())) + "."
    # HS256 keyed with the public key: the classic confusion when a verifier takes alg from the token.
    signing_input = ".".join(jwt.utils.base64url_encode(json.dumps(part).encode()).decode()
                             for part in ({"alg": "HS256", "typ": "JWT"}, claims()))
    mac = hmac.new(public_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    confused = f"{signing_input}.{jwt.utils.base64url_encode(mac).decode()}"
    for token in (unsigned, confused):
        assert client.get(TRAINING, headers={"authorization": f"Bearer {token}"}).status_code == 401


def test_forwarded_headers_do_not_dodge_the_rate_limit(make_publisher) -> None:
    client = TestClient(make_publisher(rate_limit=2), base_url=LOCAL)
    statuses = [client.get(TRAINING, headers={"x-forwarded-for": f"198.51.100.{i}"}).status_code for i in range(3)]
    assert statuses == [401, 401, 429]  # three forged addresses, one real client
    app = make_publisher(rate_limit=2, trusted_proxies=["testclient"])
    proxied = TestClient(app, base_url=LOCAL)
    statuses = [proxied.get(TRAINING, headers={"x-forwarded-for": f"198.51.100.{i}"}).status_code for i in range(3)]
    assert statuses == [401, 401, 401]  # behind a configured proxy, each forwarded address is its own client
    clients = [e.client for e in app.state.publisher.audit.entries("shop", limit=3)]
    assert sorted(clients) == ["198.51.100.0", "198.51.100.1", "198.51.100.2"]


def test_every_refusal_is_audited_with_the_client_address(make_publisher) -> None:
    app = make_publisher(max_body_bytes=1000)
    client = TestClient(app, base_url=LOCAL)
    good = issue_token(SECRET, subject="orchestrator", roles=["ml_orchestrator"], audience="shop")
    assert client.get(TRAINING).status_code == 401
    assert client.get(TRAINING, headers={"host": "evil.example"}).status_code == 400
    assert client.post(TRAINING, content=b"x" * 5000, headers={"authorization": f"Bearer {good}"}).status_code == 413
    assert client.get(TRAINING, headers={"authorization": f"Bearer {good}"}).status_code == 200
    entries = list(reversed(app.state.publisher.audit.entries("shop")))
    assert [(e.status_code, e.client) for e in entries] == [(401, "testclient"), (400, "testclient"),
                                                           (413, "testclient"), (200, "testclient")]
    assert "Host 'evil.example'" in entries[1].detail and "limit of 1000 bytes" in entries[2].detail
