"""`mirisk keys`, `mirisk serve`, and the attacks and the audit pointed at a live gateway."""

import json

import httpx
import pytest
from typer.testing import CliRunner

from mirisk.cli import app
from mirisk.gateway.database import connect
from tests.servers import start_server

runner = CliRunner()


def test_keys_are_created_listed_and_revoked(tmp_path):
    db = str(tmp_path / "gateway.db")
    created = runner.invoke(app, ["keys", "create", "--db", db, "--budget", "500", "--window", "1d",
                                  "--policy", "topk:3", "--label", "radiology", "--json"])
    assert created.exit_code == 0, created.output
    key = json.loads(created.output)
    assert key["key"].startswith(f"mk_{key['id']}_")
    listed = json.loads(runner.invoke(app, ["keys", "list", "--db", db, "--json"]).output)
    assert [(k["id"], k["policy"], k["budget"], k["window_seconds"], k["label"]) for k in listed] == [
        (key["id"], "topk:3", 500, 86400, "radiology")]
    assert key["key"] not in runner.invoke(app, ["keys", "list", "--db", db]).output
    assert runner.invoke(app, ["keys", "revoke", key["id"], "--db", db]).exit_code == 0
    assert json.loads(runner.invoke(app, ["keys", "list", "--db", db, "--json"]).output)[0]["revoked"] is not None
    copy = tmp_path / "backup.db"
    assert runner.invoke(app, ["keys", "backup", "--db", db, "--out", str(copy)]).exit_code == 0
    assert json.loads(runner.invoke(app, ["keys", "list", "--db", str(copy), "--json"]).output)[0]["id"] == key["id"]
    again = runner.invoke(app, ["keys", "backup", "--db", db, "--out", str(copy)])
    assert again.exit_code == 2 and "already exists" in again.output


@pytest.mark.parametrize(("arguments", "message"), [
    (["keys", "create", "--policy", "everything"], "unknown output policy"),
    (["keys", "create", "--window", "1d"], "give a --budget too"),
    (["keys", "revoke", "abc"], "no key with id"),
    (["keys", "list"], None),
])
def test_bad_key_commands_fail_in_one_line(tmp_path, arguments, message):
    db = tmp_path / "gateway.db"
    connect(db).close()
    result = runner.invoke(app, [*arguments, "--db", str(db)])
    if message is None:
        assert result.exit_code == 0
    else:
        assert result.exit_code == 2 and message in result.output


def test_serve_refuses_bad_settings_in_one_line(served_model, tmp_path):
    result = runner.invoke(app, ["serve", "--model", str(served_model), "--db", str(tmp_path / "g.db"),
                                 "--policy", "top3"])
    assert result.exit_code == 2 and "unknown output policy" in result.output
    missing = runner.invoke(app, ["serve", "--model", str(tmp_path / "none"), "--db", str(tmp_path / "g.db")])
    assert missing.exit_code == 2 and "model not found" in missing.output
    for options, message in ((["--max-body-mb", "nan"], "--max-body-mb must be a finite number"),
                             (["--max-body-mb", "inf"], "--max-body-mb must be a finite number"),
                             (["--port", "99999"], "--port must be between 1 and 65535"),
                             (["--header-timeout", "nan"], "header timeout must be in (0, 3600]"),
                             (["--body-timeout", "0"], "body timeout must be in (0, 3600]"),
                             (["--max-connections", "0"], "connection cap must be between 1"),
                             (["--policy", "topk:40"], "reveals every score")):
        result = runner.invoke(app, ["serve", "--model", str(served_model), "--db", str(tmp_path / "g.db"), *options])
        assert result.exit_code == 2 and message in result.output, result.output


def test_the_label_only_attack_runs_against_the_gateway(server, served_model, small_faces, tmp_path):
    _, token = server.new_key(budget=400)
    result = runner.invoke(app, ["attack", "labelonly", "--model", str(served_model), "--data", small_faces.source,
                                 "--endpoint", server.url, "--iterations", "2", "--out", str(tmp_path / "out"),
                                 "--no-baseline"],
                           env={"MIRISK_API_KEY": token})
    assert result.exit_code == 0, result.output
    assert "under policy label, 400 queries left" in " ".join(result.output.split())
    payload = json.loads((tmp_path / "out" / "result.json").read_text())
    assert payload["queries_used"] == 400 and payload["budget_limited"]


def test_the_audit_tests_the_deployed_policy_through_the_gateway(server, served_model, small_faces, tmp_path):
    _, token = server.new_key(policy="topk:3", budget=2000)
    config = tmp_path / "audit.toml"
    config.write_text("blackbox_iterations = 3\nepsilons = []\nbaseline = false\n")
    arguments = ["audit", "--model", str(served_model), "--data", small_faces.source, "--config", str(config),
                 "--endpoint", server.url, "--api-key", token]
    wrong = runner.invoke(app, [*arguments, "--access", "scores", "--out", str(tmp_path / "wrong")])
    assert wrong.exit_code == 2 and "cannot test scores" in wrong.output
    result = runner.invoke(app, [*arguments, "--access", "top-k", "--out", str(tmp_path / "audit")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "audit" / "report.json").read_text())
    assert [attack["id"] for attack in report["attacks"]] == ["gateway-top3-blackbox"]
    assert report["plan"]["settings"]["deployment"] == {"endpoint": server.url, "policy": "topk:3", "access": "top-k"}
    # One NES step is 40 people x 40 samples = 1,600 queries; a second would pass the key's 2,000.
    assert report["attacks"][0]["queries_used"] == 1600
    assert server.url in (tmp_path / "audit" / "report.html").read_text()


def test_a_key_that_no_longer_fits_never_stops_serve_and_is_refused_when_it_asks(served_model, small_faces, tmp_path):
    """A key made for a model of 1,001 classes, then a server of the 40-class model: it starts,
    and that key's requests get 403 with the reason, while other keys are answered."""
    db = tmp_path / "gateway.db"
    unfit = json.loads(runner.invoke(app, ["keys", "create", "--db", str(db), "--policy", "topk:1000", "--json"]).output)
    fitting = json.loads(runner.invoke(app, ["keys", "create", "--db", str(db), "--json"]).output)
    running = start_server(served_model, db, "--detector", "off")
    try:
        face = {"inputs": [small_faces.images[0].ravel().tolist()]}
        refused = httpx.post(f"{running.url}/v1/predict", json=face, timeout=30,
                             headers={"Authorization": f"Bearer {unfit['key']}"})
        answered = httpx.post(f"{running.url}/v1/predict", json=face, timeout=30,
                              headers={"Authorization": f"Bearer {fitting['key']}"})
    finally:
        running.stop()
    assert (refused.status_code, refused.json()["reason"]) == (403, "policy")
    assert "topk:1000" in refused.json()["error"] and answered.status_code == 200
    again = runner.invoke(app, ["keys", "create", "--db", str(db), "--policy", "topk:1000"])
    assert again.exit_code == 2 and "on a model of 40 classes" in again.output  # the server recorded its model
