import json

import pytest

from mirisk.audit.checks import BudgetCheck, DosingRetrain, FaceRetrain, PolicyRow
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


def test_a_face_sweep_point_reads_back_as_a_retrain_with_each_sweep_attack():
    attack = {"judge_top1": 0.05, "judge_top1_ci": [0.01, 0.2], "face_rate": 0.4, "reid_top1": 0.1,
              "identification_top1": 0.15, "identification_top5": 0.3}
    point = {"defence": "dp-eps-1", "epsilon": 1.0, "n_train": 7, "epsilon_spent": 0.98, "train_accuracy": 0.5,
             "test_accuracy": 0.4, "vulnerability": {}, "chance_top1": 0.025, "white-box": attack,
             "scores": {**attack, "reid_top1": 0.2}}
    retrain = FaceRetrain.from_json(point)
    assert (retrain.epsilon, retrain.test_accuracy, retrain.chance_top1) == (1.0, 0.4, 0.025)
    assert retrain.attacks["white-box"].reid_top1 == 0.1 and retrain.attacks["scores"].reid_top1 == 0.2


def test_an_iwpc_sweep_point_reads_back_for_the_audited_column():
    point = {"epsilon": None, "epsilon_spent": None, "repeats": 1, "mae": 8.5, "within_20pct": 0.45,
             "VKORC1_true_train": 0.6, "CYP2C9_true_train": 0.8}
    assert DosingRetrain.from_json(point, "CYP2C9") == DosingRetrain(None, 8.5, 0.45, 0.8)


def test_a_budget_check_survives_its_json():
    check = BudgetCheck(unit="scores-blackbox", access="scores", budget=400, queries_used=400, queries_per_person=10.0,
                        judge_top1=0.05, judge_top1_ci=(0.01, 0.16), face_rate=0.0, reid_top1=0.4,
                        identification_top1=0.3)
    assert BudgetCheck.from_json(json.loads(json.dumps(check.to_json()))) == check
