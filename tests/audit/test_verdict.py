"""The verdict rules on hand-made evidence."""

from mirisk.audit.plan import build_plan, parse_accesses
from mirisk.audit.verdict import image_attack_level, tabular_attack_level, threat_verdicts


def image_metrics(top1, reid=0.0, chance=0.025):
    return {"identification_top1": top1, "reid_top1": reid, "chance_top1": chance}


def test_image_levels_follow_the_documented_thresholds():
    assert image_attack_level(image_metrics(0.6))[0] == "critical"
    assert image_attack_level(image_metrics(0.05, reid=0.25))[0] == "high"
    assert image_attack_level(image_metrics(0.08))[0] == "elevated"
    assert image_attack_level(image_metrics(0.05))[0] == "low"


def test_tabular_levels_use_the_advantage_on_training_records():
    def metrics(accuracy, prior):
        part = {"accuracy": accuracy, "baseline_accuracy": prior, "population_accuracy": prior}
        return {**part, "train": part}

    assert tabular_attack_level(metrics(0.70, 0.37))[0] == "critical"
    assert tabular_attack_level(metrics(0.53, 0.37))[0] == "high"
    assert tabular_attack_level(metrics(0.41, 0.37))[0] == "elevated"
    assert tabular_attack_level(metrics(0.38, 0.37))[0] == "low"


def test_a_threat_model_inherits_the_attacks_of_less_revealing_access():
    plan = build_plan("image", parse_accesses("white-box,scores,label-only"), None, {})
    results = {
        "white-box-miface": {"metrics": image_metrics(0.05)},
        "scores-blackbox": {"metrics": image_metrics(0.02)},
        "label-only-repulsion": {"metrics": image_metrics(0.3)},
    }
    verdict = threat_verdicts(plan, results)
    assert verdict["by_threat_model"]["white-box"]["level"] == "high"  # the label-only attack works for it too
    assert verdict["by_threat_model"]["scores"]["decided_by"] == "label-only-repulsion"
    assert verdict["overall"] == "high"
