import json

import pytest

from mirisk.audit.checks import PolicyRow
from mirisk.audit.plan import AttackUnit
from mirisk.threats import AccessLevel


def test_a_policy_row_survives_its_json_and_reads_its_success_as_the_verdict_does():
    row = PolicyRow(policy="round:1", access="scores", attack="policy-round-1", judge_top1=0.1,
                    judge_top1_ci=(0.02, 0.3), face_rate=0.9, reid_top1=0.35, identification_top1=0.2,
                    queries_used=4000, accuracy=0.95, calibration_error=0.04)
    assert PolicyRow.from_json(json.loads(json.dumps(row.to_json()))) == row
    assert row.success == 0.35  # the better of judge identification and re-identification


def test_a_unit_that_runs_through_no_policy_gives_no_policy_row():
    unit = AttackUnit(id="white-box-miface", access=AccessLevel.WHITE_BOX, attack="miface")
    with pytest.raises(ValueError, match="no output policy"):
        PolicyRow.measured(unit, {"queries_used": 0, "metrics": {}, "policy_cost": {}})
