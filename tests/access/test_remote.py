"""The black-box attacks, unchanged, against a live gateway through RemoteOracle."""

import pytest
import torch

from mirisk.access.oracle import Oracle
from mirisk.access.policies import parse_policy
from mirisk.access.remote import GatewayRefused, RemoteOracle
from mirisk.attacks.blackbox import ScoreBlackBox
from mirisk.attacks.contract import seeded
from mirisk.attacks.labelonly import BoundaryRepulsion
from mirisk.errors import MiriskError
from mirisk.gateway.database import connect
from mirisk.gateway.keys import revoke_key
from mirisk.models.store import load_target
from tests.servers import start_server

PEOPLE = torch.arange(6)


def test_label_only_through_the_gateway_matches_the_in_process_oracle(server, served_model):
    target = load_target(served_model)
    _, token = server.new_key(policy="label")
    remote = RemoteOracle(server.url, token)
    assert (remote.input_shape, remote.n_classes, remote.policy.spec) == (target.input_shape, 40, "label")
    attack = BoundaryRepulsion(iterations=3, init_rounds=3, init_batch=64, points=8)
    over_http = attack.run(remote, PEOPLE, generator=seeded(0))
    in_process = attack.run(Oracle(target, parse_policy("label")), PEOPLE, generator=seeded(0))
    assert over_http.queries_used == in_process.queries_used == remote.queries_used > 0
    assert torch.equal(over_http.reconstructions, in_process.reconstructions)
    assert over_http.settings["start_found"] == in_process.settings["start_found"]


def test_the_score_attack_is_stopped_by_the_budget_and_flagged(server, served_model):
    key_id, token = server.new_key(policy="scores", budget=600)
    remote = RemoteOracle(server.url, token)
    result = ScoreBlackBox(iterations=50, samples=5).run(remote, PEOPLE, generator=seeded(0))
    assert result.settings["budget"] == 600 and result.queries_used == 600 and remote.remaining == 0
    assert set(result.stop_reasons) == {"budget"}
    database = connect(server.db)
    assert database.execute("SELECT queries_used FROM keys WHERE id = ?", (key_id,)).fetchone()[0] == 600
    assert database.execute("SELECT action FROM alerts WHERE key_id = ?", (key_id,)).fetchall() == [("alert",)]


def test_refusals_and_unreachable_gateways_are_one_line_errors(server):
    key_id, token = server.new_key()
    remote = RemoteOracle(server.url, token)
    revoke_key(connect(server.db), key_id)
    with pytest.raises(GatewayRefused, match="revoked"):
        remote.query(torch.zeros(1, *remote.input_shape))
    with pytest.raises(GatewayRefused, match="missing, invalid or revoked"):
        RemoteOracle(server.url, "mk_000000000000_" + "a" * 43)
    with pytest.raises(MiriskError, match="cannot reach the gateway"):
        RemoteOracle("http://127.0.0.1:9", token)


def test_a_gateway_that_blocks_the_key_stops_the_attack_with_its_best_so_far(served_model, tmp_path):
    blocking = start_server(served_model, tmp_path / "gateway.db", "--detector", "block", "--max-batch", "32")
    try:
        _, token = blocking.new_key(policy="scores")
        remote = RemoteOracle(blocking.url, token)
        result = ScoreBlackBox(iterations=20, samples=5).run(remote, PEOPLE, generator=seeded(0))
    finally:
        blocking.stop()
    assert set(result.stop_reasons) == {"gateway-blocked"}
    assert 0 < result.queries_used <= 128 and result.reconstructions.shape == (6, *remote.input_shape)
