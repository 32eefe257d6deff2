"""The gateway's HTTP interface, in process: keys, per-key policies, refusals, the detector
actions and the metrics."""

import hashlib
import sqlite3

import blake3
import numpy as np
import orjson
import pytest
import torch
from fastapi.testclient import TestClient

from mirisk.gateway.app import create_app
from mirisk.gateway.database import SCHEMA, connect
from mirisk.gateway.detector import DetectorSettings
from mirisk.gateway.keys import create_key, revoke_key
from mirisk.gateway.ledger import flag_key, settle
from mirisk.gateway.service import Gateway, GatewaySettings
from mirisk.models import TargetModel, build_model


@pytest.fixture()
def small_target() -> TargetModel:
    torch.manual_seed(0)
    return TargetModel(build_model("softmax", (1, 4, 4), 5), "softmax", (1, 4, 4), tuple("abcde"))


def serve(target, db, **settings):
    gateway = Gateway(target, db, GatewaySettings(**settings))
    return gateway, TestClient(create_app(gateway))


def new_key(db, **rules) -> tuple[str, str]:
    connection = connect(db)
    key, token = create_key(connection, **rules)
    connection.close()
    return key.id, token


def inputs(n: int, seed: int = 0) -> list:
    return np.random.default_rng(seed).random((n, 1, 4, 4), dtype=np.float32).tolist()


def predict(client, token, body):
    return client.post("/v1/predict", json=body, headers={"Authorization": f"Bearer {token}"})


def test_each_key_gets_its_own_policy_and_budget(small_target, tmp_path):
    db = tmp_path / "gateway.db"
    gateway, client = serve(small_target, db, policy="label")
    _, public = new_key(db, budget=5)
    _, clinician = new_key(db, policy="topk:2")
    labels = predict(client, public, {"inputs": inputs(3)})
    assert labels.status_code == 200 and labels.json()["policy"] == "label" and labels.json()["queries_left"] == 2
    assert np.array_equal(np.sort(np.asarray(labels.json()["outputs"]), axis=1)[:, -1], np.ones(3))
    scores = predict(client, clinician, {"inputs": inputs(3)})
    rows = np.asarray(scores.json()["outputs"])
    assert scores.json()["policy"] == "topk:2" and scores.json()["queries_left"] is None
    assert ((rows > 0).sum(axis=1) == 2).all()
    expected = torch.softmax(small_target.module(torch.tensor(inputs(3))), dim=1).topk(2).values
    np.testing.assert_allclose(np.sort(rows, axis=1)[:, ::-1][:, :2], expected.detach().numpy(), rtol=1e-5)
    over = predict(client, public, {"inputs": inputs(3)})
    assert over.status_code == 429 and over.json()["reason"] == "budget" and over.json()["queries_left"] == 2
    described = client.get("/v1/model", headers={"Authorization": f"Bearer {clinician}"}).json()
    assert described["input_shape"] == [1, 4, 4] and described["classes"] == list("abcde")
    assert described["policy"] == "topk:2" and described["max_batch"] == 64


@pytest.mark.parametrize("schema, digest", [(None, blake3.blake3), (1, hashlib.sha256)])
def test_the_log_identifies_each_input_by_its_databases_digest(small_target, tmp_path, schema, digest):
    db = tmp_path / "gateway.db"
    if schema == 1:  # a log begun before BLAKE3 keeps SHA-256
        old = sqlite3.connect(db)
        old.executescript(SCHEMA.split("CREATE TABLE IF NOT EXISTS settings")[0] + "PRAGMA user_version=1;")
        old.close()
    gateway, client = serve(small_target, db)
    _, token = new_key(db)
    assert predict(client, token, {"inputs": inputs(2)}).status_code == 200
    (logged,) = connect(db).execute("SELECT input_digests FROM requests").fetchone()
    sent = np.asarray(inputs(2), dtype=np.float32)
    assert logged == ",".join(digest(row.tobytes()).hexdigest() for row in sent)


def test_auth_failures_are_401_and_counted(small_target, tmp_path):
    db = tmp_path / "gateway.db"
    key_id, token = new_key(db)
    with TestClient(create_app(Gateway(small_target, db, GatewaySettings()))) as client:  # stopping writes the counts
        _auth_failures(client, db, key_id, token)
    counted = connect(db).execute("SELECT key_id, decision, refusals FROM auth_refusals ORDER BY key_id").fetchall()
    assert counted == [("", "rejected:auth", 1), (key_id, "rejected:auth", 1)]
    assert token not in (db.read_bytes() + db.with_name("gateway.db-wal").read_bytes()).decode("latin-1")


def _auth_failures(client: TestClient, db, key_id: str, token: str) -> None:
    missing = client.post("/v1/predict", json={"inputs": inputs(1)})
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    wrong_secret = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert predict(client, wrong_secret, {"inputs": inputs(1)}).status_code == 401
    revoke_key(connect(db), key_id)
    revoked = predict(client, token, {"inputs": inputs(1)})
    assert revoked.status_code == 401 and revoked.json()["reason"] == "revoked"
    assert client.get("/v1/model", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    logged = connect(db).execute("SELECT key_id, decision FROM requests ORDER BY id").fetchall()
    assert logged == [(key_id, "rejected:revoked")]  # the failed authentications are counted instead


def test_a_budget_spent_elsewhere_is_still_enforced(small_target, tmp_path):
    """The gateway skips its pre-check for a key its last answer left with queries to
    spare; the deciding transaction still refuses a key another server emptied."""
    db = tmp_path / "gateway.db"
    _, client = serve(small_target, db)
    key_id, token = new_key(db, budget=4)
    assert predict(client, token, {"inputs": inputs(1)}).json()["queries_left"] == 3
    assert settle(connect(db), key_id, ["x"] * 3, "label", "[]", 10**9).queries_left == 0  # another server
    replies = [predict(client, token, {"inputs": inputs(1)}) for _ in range(2)]
    assert [(reply.status_code, reply.json()["reason"]) for reply in replies] == [(429, "budget")] * 2
    logged = connect(db).execute("SELECT decision, outputs IS NULL FROM requests ORDER BY id").fetchall()
    assert logged == [("answered", 0), ("answered", 0), ("rejected:budget", 1), ("rejected:budget", 1)]


@pytest.mark.parametrize(("action", "status"), [("block", 403), ("throttle", 429)])
def test_a_flagged_key_is_blocked_or_throttled(small_target, tmp_path, action, status):
    db = tmp_path / "gateway.db"
    detector = DetectorSettings(low=0.05, high=10.0, neighbours=2, window=10, action=action, throttle_per_minute=1)
    gateway, client = serve(small_target, db, detector=detector)
    key_id, token = new_key(db)
    benign, probe = new_key(db)[1], inputs(1)[0]
    assert all(predict(client, benign, {"inputs": inputs(4, seed)}).status_code == 200 for seed in range(5))
    # Tiny steps around one input: from the second request on, more than half of the last
    # ten inputs lie next to earlier ones, and the request that crosses the line is refused.
    steps = np.clip(np.asarray(probe) + 1e-3 * np.random.default_rng(1).standard_normal((3, 4, 1, 4, 4)), 0, 1)
    replies = [predict(client, token, {"inputs": step.tolist()}) for step in steps]
    assert [reply.status_code for reply in replies] == [200, status, status]
    alerts = connect(db).execute("SELECT key_id, action FROM alerts").fetchall()
    assert alerts == [(key_id, action)]
    assert f'mirisk_probe_alerts_total{{action="{action}"}} 1.0' in client.get("/metrics").text


def test_exact_retries_are_not_taken_for_probing(small_target, tmp_path):
    db = tmp_path / "gateway.db"
    detector = DetectorSettings(low=0.05, high=10.0, neighbours=2, window=10, action="block")
    _, client = serve(small_target, db, detector=detector)
    _, token = new_key(db)
    replies = [predict(client, token, {"inputs": inputs(1)}) for _ in range(12)]
    assert [reply.status_code for reply in replies] == [200] * 12


def test_metrics_count_outcomes_and_latency(small_target, tmp_path):
    db = tmp_path / "gateway.db"
    _, client = serve(small_target, db)
    _, token = new_key(db, budget=2)
    client.post("/v1/predict", content=b"{", headers={"Authorization": f"Bearer {token}"})
    predict(client, token, {"inputs": inputs(2)})
    predict(client, token, {"inputs": inputs(1)})
    text = client.get("/metrics").text
    for line in ('mirisk_requests_total{outcome="answered"} 1.0', 'mirisk_requests_total{outcome="budget"} 1.0',
                 'mirisk_requests_total{outcome="bad-input"} 1.0', "mirisk_queries_answered_total 2.0",
                 "mirisk_budget_exhausted_total 1.0", "mirisk_request_seconds_count 3.0"):
        assert line in text
    assert client.get("/healthz").json()["status"] == "ok"
    assert "/v1/predict" in client.get("/openapi.json").json()["paths"]


def test_framing_and_credentials_are_read_strictly(small_target, tmp_path):
    db = tmp_path / "gateway.db"
    _, client = serve(small_target, db)
    key_id, token = new_key(db)
    good = orjson.dumps({"inputs": inputs(1)})
    smuggled = client.post("/v1/predict", content=good, headers={
        "Authorization": f"Bearer {token}", "Content-Length": str(len(good)), "Transfer-Encoding": "chunked"})
    doubled = client.post("/v1/predict", content=good, headers=[("Authorization", f"Bearer {token}"),
                                                                ("Authorization", "Bearer mk_other")])
    raw = client.post("/v1/predict", content=good, headers={"Authorization": token})
    basic = client.post("/v1/predict", content=good, headers={"Authorization": f"Basic {token}"})
    slash = client.post("/v1/predict/", content=good, headers={"Authorization": f"Bearer {token}"},
                        follow_redirects=False)
    assert (smuggled.status_code, doubled.status_code) == (400, 400)
    assert "Transfer-Encoding and Content-Length" in smuggled.json()["error"]
    assert "more than one Authorization" in doubled.json()["error"]
    assert raw.status_code == basic.status_code == 401 and "Bearer KEY" in raw.json()["error"]
    assert slash.status_code == 404  # never a redirect a proxy might follow with the key
    assert predict(client, token, {"inputs": inputs(1)}).status_code == 200


def test_a_blocked_key_gets_no_model_description(small_target, tmp_path):
    db = tmp_path / "gateway.db"
    _, client = serve(small_target, db)
    key_id, token = new_key(db)
    with connect(db) as connection:
        flag_key(connection, key_id, "probe", "block")
    described = client.get("/v1/model", headers={"Authorization": f"Bearer {token}"})
    assert described.status_code == 403 and described.json()["reason"] == "blocked"


def test_budgeted_answers_carry_ratelimit_fields_and_refusals_an_accurate_retry_after(small_target, tmp_path):
    db = tmp_path / "gateway.db"
    _, client = serve(small_target, db)
    _, token = new_key(db, budget=3, window="1h")
    _, unlimited = new_key(db)
    answered = predict(client, token, {"inputs": inputs(2)})
    refused = predict(client, token, {"inputs": inputs(2)})
    assert (answered.headers["RateLimit-Limit"], answered.headers["RateLimit-Remaining"]) == ("3", "1")
    assert 3600 <= int(answered.headers["RateLimit-Reset"]) <= 3660  # counted for at least the window, at most 1/60 more
    assert refused.status_code == 429 and 3600 <= int(refused.headers["Retry-After"]) <= 3660
    assert "RateLimit-Limit" not in predict(client, unlimited, {"inputs": inputs(1)}).headers


def test_openapi_documents_every_error_and_the_bearer_scheme(small_target, tmp_path):
    _, client = serve(small_target, tmp_path / "gateway.db", max_batch=8)
    schema = client.get("/openapi.json").json()
    predict_operation = schema["paths"]["/v1/predict"]["post"]
    assert {"400", "401", "403", "408", "413", "422", "429", "503"} <= set(predict_operation["responses"])
    assert "Retry-After" in predict_operation["responses"]["429"]["headers"]
    assert predict_operation["security"] == [{"bearer": []}]
    assert schema["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": "An API key from `mirisk keys create`."}
    inputs_schema = predict_operation["requestBody"]["content"]["application/json"]["schema"]["properties"]["inputs"]
    nested, flat = inputs_schema["oneOf"]
    assert [(form["minItems"], form["maxItems"]) for form in (nested, flat)] == [(1, 8), (1, 8)]
    assert [nested["items"]["maxItems"], nested["items"]["items"]["maxItems"], flat["items"]["maxItems"]] == [1, 4, 16]
    assert list(schema["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]
