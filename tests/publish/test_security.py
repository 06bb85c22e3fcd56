"""Who may read a service's data: tokens, roles, expiry, tampering, rate limits, and the audit
trail of every attempt; then a bounded fuzz of the query parameters and headers (no 5xx)."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
import schemathesis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from tests.publish.services import SECRET, write_service
from tooltune.errors import ConfigError
from tooltune.publish import PublishConfig, create_app, issue_token

TRAINING = "/mcp/training-dataset"


def make_app(tmp_path, **fields):
    folder = write_service(tmp_path, "shop")
    config = PublishConfig(**{"service": "shop", "data_dir": folder, "key": SECRET,
                              "db_url": f"sqlite:///{tmp_path / 'audit.db'}", **fields})
    return create_app(config)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def audit(app) -> list:
    return list(reversed(app.state.publisher.audit.entries("shop")))  # oldest first


@pytest.fixture
def app(tmp_path):
    return make_app(tmp_path)


def test_every_refusal_is_answered_and_audited(app):
    client = TestClient(app, base_url="http://127.0.0.1")
    good = issue_token(SECRET, subject="orchestrator", roles=["ml_orchestrator"], audience="shop")
    viewer = issue_token(SECRET, subject="dashboard", roles=["viewer"], audience="shop")
    expired = issue_token(SECRET, subject="orchestrator", roles=["ml_orchestrator"], audience="shop", now=time.time() - 7200, ttl_s=60)
    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged = base64.urlsafe_b64encode(json.dumps({**claims, "sub": "mallory"}).encode()).rstrip(b"=").decode()
    tampered = f"{header}.{forged}.{signature}"  # the claims changed, the signature did not
    other_key = issue_token("a-different-secret-of-at-least-32-bytes", subject="orchestrator", roles=["ml_orchestrator"], audience="shop")

    answers = {
        "none": client.get(TRAINING),
        "viewer": client.get(TRAINING, headers=bearer(viewer)),
        "expired": client.get(TRAINING, headers=bearer(expired)),
        "tampered": client.get(TRAINING, headers=bearer(tampered)),
        "other_key": client.get("/mcp/test-dataset", headers=bearer(other_key)),
        "basic": client.get("/mcp/catalog", headers={"Authorization": "Basic b3JjaDpwdw=="}),
        "good": client.get(TRAINING, headers=bearer(good)),
    }
    assert {k: r.status_code for k, r in answers.items()} == {
        "none": 401, "viewer": 403, "expired": 401, "tampered": 401, "other_key": 401, "basic": 401, "good": 200}
    assert "missing Authorization" in answers["none"].json()["detail"]
    assert answers["none"].headers["www-authenticate"].startswith("Bearer")
    assert "'ml_orchestrator' required" in answers["viewer"].json()["detail"] and "viewer" in answers["viewer"].json()["detail"]
    assert "expired" in answers["expired"].json()["detail"]
    assert "signature" in answers["tampered"].json()["detail"]
    assert answers["good"].json()["total"] == 3
    for refused in ("none", "viewer", "expired", "tampered", "other_key", "basic"):
        assert "items" not in answers[refused].json()  # nothing of the data in any refusal

    rows = audit(app)
    assert [(r.subject, r.outcome, r.status_code) for r in rows] == [
        (None, "unauthenticated", 401), ("dashboard", "forbidden", 403), (None, "unauthenticated", 401),
        (None, "unauthenticated", 401), (None, "unauthenticated", 401), (None, "unauthenticated", 401),
        ("orchestrator", "allowed", 200)]
    assert rows[1].roles == ["viewer"] and rows[2].detail.startswith("token expired")
    assert [r.resource for r in rows][4:6] == ["/mcp/test-dataset", "/mcp/catalog"]
    assert all(r.service == "shop" and r.method == "GET" and r.at.tzinfo is not None for r in rows)


def test_rate_limit_answers_429_with_retry_after_and_is_audited(tmp_path):
    app = make_app(tmp_path, rate_limit=3, rate_window_s=60)
    client = TestClient(app, base_url="http://127.0.0.1")
    orchestrator = bearer(issue_token(SECRET, subject="orchestrator", roles=["ml_orchestrator"], audience="shop"))
    other = bearer(issue_token(SECRET, subject="orchestrator-2", roles=["ml_orchestrator"], audience="shop"))
    codes = [client.get(TRAINING, headers=orchestrator).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = client.get(TRAINING, headers=orchestrator)
    assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 60
    assert "3 requests per 60 s" in limited.json()["detail"]
    assert client.get(TRAINING, headers=other).status_code == 200  # the limit is per caller
    outcomes = [(r.subject, r.outcome) for r in audit(app)]
    assert outcomes.count(("orchestrator", "rate_limited")) == 2 and outcomes[-1] == ("orchestrator-2", "allowed")


def test_rs256_tokens_verify_with_the_public_key_only(tmp_path):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    client = TestClient(make_app(tmp_path, key=public_pem, algorithm="RS256"), base_url="http://127.0.0.1")
    token = issue_token(private_pem, subject="orchestrator", roles=["ml_orchestrator"], audience="shop", algorithm="RS256")
    assert client.get(TRAINING, headers=bearer(token)).status_code == 200
    # An HS256 token "signed" with the public key (the classic algorithm confusion) is refused.
    confused = jwt.encode({"sub": "x", "roles": ["ml_orchestrator"], "exp": int(time.time()) + 60}, "k" * 32)
    assert client.get(TRAINING, headers=bearer(confused)).status_code == 401


def test_etag_pages_formats_and_since(app):
    client = TestClient(app, base_url="http://127.0.0.1")
    auth = bearer(issue_token(SECRET, subject="orchestrator", roles=["ml_orchestrator"], audience="shop"))
    first = client.get(TRAINING, params={"page_size": 2}, headers=auth)
    body = first.json()
    assert (body["total"], body["pages"], body["next_page"], len(body["items"])) == (3, 2, 2, 2)
    again = client.get(TRAINING, params={"page_size": 2}, headers={**auth, "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == first.headers["etag"]
    page2 = client.get(TRAINING, params={"page_size": 2, "page": 2}, headers={**auth, "If-None-Match": first.headers["etag"]})
    assert page2.status_code == 200 and len(page2.json()["items"]) == 1 and page2.json()["next_page"] is None
    newer = client.get(TRAINING, params={"since": "2026-11-01T12:00:00Z"}, headers=auth).json()
    assert newer["total"] == 2  # created on days 1 and 2 of the fixture, after day 0
    openai = client.get(TRAINING, params={"format": "openai"}, headers=auth).json()["items"][0]
    assert openai["messages"][-1]["tool_calls"][0]["function"]["name"] == "get_customer_by_email"
    assert {t["function"]["name"] for t in openai["tools"]} >= {"get_customer_by_email"}
    chatml = client.get("/mcp/test-dataset", params={"format": "chatml"}, headers=auth).json()["items"][0]
    assert "<|im_start|>user" in chatml["text"] and "<tool_call>" in chatml["text"]
    bad = client.get(TRAINING, params={"since": "last tuesday", "page": 0}, headers=auth)
    assert bad.status_code == 422
    assert {tuple(e["loc"]) for e in bad.json()["detail"]} == {("query", "since"), ("query", "page")}
    assert audit(app)[-1].outcome == "invalid_request" and "query.since" in audit(app)[-1].detail


def test_well_known_is_public_and_matches_the_committed_schema(app):
    import jsonschema

    from tooltune.data.publication import SCHEMA_PATH, document_schema

    committed = json.loads(SCHEMA_PATH.read_text())
    assert committed == document_schema(), "regenerate: python -c 'from tooltune.data.publication import write_schema; write_schema()'"
    document = TestClient(app, base_url="http://127.0.0.1").get("/.well-known/mcp-training-data.json").json()
    jsonschema.Draft202012Validator(committed).validate(document)
    assert document["counts"] == {"total": 3, "by_source": {"curated": 1, "production": 1, "synthetic": 1}}
    assert document["test_data"] == {"total": 2, "critical_scenarios": 1, "min_accuracy_required": 0.8,
                                     "by_category": {"multiple": 2}}
    assert document["tools_covered"] == ["get_customer_by_email", "get_customer_by_name", "get_payment_status"]
    assert document["auth"]["required_role"] == "ml_orchestrator" and document["anonymized"] is False
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**document, "counts": {"total": -1, "by_source": {}}}, committed)


def test_weak_or_missing_keys_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        PublishConfig.parse({"service": "shop", "data_dir": write_service(tmp_path, "shop"), "key": "short"})
    from tooltune.publish.config import read_key

    with pytest.raises(ConfigError, match="TOOLTUNE_PUBLISH_KEY"):
        read_key(None)


# ---- bounded fuzz: schemathesis generates valid and invalid query parameters and headers for
# every route; a client's mistake must never be a server error.


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_fuzzed_queries_and_headers_never_cause_a_server_error(tmp_path, mode):
    from hypothesis import given
    from schemathesis.generation import GenerationMode

    app = make_app(tmp_path, rate_limit=100_000, allowed_hosts=["*"])  # schemathesis sends its own Host
    token = issue_token(SECRET, subject="fuzzer", roles=["ml_orchestrator"], audience="shop")
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} == {"/.well-known/mcp-training-data.json", TRAINING, "/mcp/test-dataset",
                                              "/mcp/catalog"}
    seen: dict[int, int] = {}
    guarded = 0
    for operation in operations:
        if mode == "negative" and not operation.path.startswith("/mcp/"):
            continue  # the public document takes no parameters: there is nothing to get wrong
        @given(case=operation.as_strategy(GenerationMode(mode)))
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def run(case):
            # The generated headers as they are (the Authorization header included), then with a valid token.
            for headers in (None, {"Authorization": f"Bearer {token}"}):
                response = case.call(headers=headers)
                seen[response.status_code] = seen.get(response.status_code, 0) + 1
                nonlocal guarded
                guarded += operation.path.startswith("/mcp/")
                assert response.status_code < 500, (case.path, case.query, case.headers, response.text[:300])

        run()
    assert 200 in seen and (401 in seen or 403 in seen)
    if mode == "negative":
        assert 422 in seen  # invalid parameters were generated, and answered as the client's mistake
    assert len(audit(app)) == guarded  # every request to a data route is in the audit log, whatever its answer
