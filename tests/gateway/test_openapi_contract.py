"""Schemathesis (property-based tests generated from the gateway's own OpenAPI document)
against the app in process, for a bounded number of cases: no 5xx, and every status and
body the document declares."""

from __future__ import annotations

import pytest
import schemathesis
import torch
from hypothesis import HealthCheck, given, settings

from mirisk.gateway.app import create_app
from mirisk.gateway.database import connect
from mirisk.gateway.keys import create_key
from mirisk.gateway.service import Gateway, GatewaySettings
from mirisk.models import TargetModel, build_model

CASES_PER_OPERATION = 60


@pytest.fixture(scope="module")
def gateway_api(tmp_path_factory):
    torch.manual_seed(0)
    target = TargetModel(build_model("softmax", (1, 2, 2), 3), "softmax", (1, 2, 2), tuple("abc"))
    db = tmp_path_factory.mktemp("contract") / "gateway.db"
    gateway = Gateway(target, db, GatewaySettings(policy="scores", max_batch=4, auth_failures_per_minute=10**6))
    with connect(db) as connection:
        _, token = create_key(connection)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(gateway))
    schema.config.headers = {"Authorization": f"Bearer {token}"}
    return schema


@pytest.fixture()
def subnormal_floats():
    """Hypothesis draws subnormal floats, which the CPU flushes to zero once an attack entry
    point in this process has called ``torch.set_flush_denormal(True)``."""
    torch.set_flush_denormal(False)
    yield
    torch.set_flush_denormal(True)


def test_the_gateway_keeps_its_documented_contract(gateway_api, subnormal_floats):
    operations = [result.ok() for result in gateway_api.get_all_operations()]
    assert {operation.path for operation in operations} == {"/v1/predict", "/v1/model", "/healthz", "/metrics"}
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=CASES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def keeps_contract(case) -> None:
            case.call_and_validate()

        keeps_contract()
