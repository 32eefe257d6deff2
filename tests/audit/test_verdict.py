"""The verdict rules on hand-made evidence."""

from mirisk.audit.checks import PolicyRow
from mirisk.audit.kinds import build_plan
from mirisk.audit.plan import parse_accesses
from mirisk.audit.verdict import (
    image_attack_level, image_recommendations, image_success, segmentation_attack_level, segmentation_recommendations,
    tabular_attack_level, threat_verdicts,
)
from mirisk.metrics.identification import (
    BaselineIdentification, EvaluatorDisagreement, ImageIdentification, IndependentIdentification,
)


def image_metrics(judge, reid=0.0, chance=0.025, pixel=None, baseline=(0.025, 0.0), n=40):
    """Hand-made metrics of one face attack, as result.json holds them: the judge's and
    re-identification's top-1, the pixel evaluator's (default: the judge's), and the
    label-permuted baseline (None: unavailable)."""
    def interval(p):
        return (max(0.0, p - 0.1), min(1.0, p + 0.1))

    pixel = judge if pixel is None else pixel
    twin = (BaselineIdentification(False, reason="imported model") if baseline is None else
            BaselineIdentification(True, kind="label-permuted twin", pixel_top1=baseline[0], reid_top1=baseline[1],
                                   reid_top1_ci=interval(baseline[1]), judge_top1=baseline[0],
                                   judge_top1_ci=interval(baseline[0]), judge_top5=baseline[0], face_rate=0.0))
    identified = round(pixel * n)
    rejected = max(0, identified - round(judge * n))
    people = tuple(range(n))
    judged = IndependentIdentification(
        identification_top1=judge, identification_top5=judge, identification_top1_ci=interval(judge),
        identification_top5_ci=interval(judge), face_rate=0.5, face_rate_ci=interval(0.5), chance_top1=chance,
        chance_top5=5 * chance, n_targets=n, gallery="held-out photos only", ranks=(1,) * n,
        lineups=((0,) * 5,) * n, detected=(True,) * n)
    return ImageIdentification(
        pixel_top1=pixel, pixel_top5=pixel, reid_top1=reid, reid_top1_ci=interval(reid), reid_top5=reid,
        reid_ssim_top1=reid, reid_ssim_top5=reid, reid_gallery="held-out photos only", ssim_mean=0.3,
        psnr_mean=12.0, chance_top1=chance, chance_top5=5 * chance, judge=judged,
        disagreement=EvaluatorDisagreement(rejected / identified if identified else 0.0, identified, rejected),
        reid_training_photos_top1=reid, labels=people, evaluator_ranks=(1,) * n, reid_ranks=(1,) * n,
        ssim_closest=(0.3,) * n, baseline=twin).to_json()


def test_image_levels_follow_the_documented_thresholds_above_the_baseline():
    assert image_attack_level(image_metrics(0.6))[0] == "critical"
    assert image_attack_level(image_metrics(0.05, reid=0.25))[0] == "high"
    assert image_attack_level(image_metrics(0.08))[0] == "elevated"  # 5.5 points over the baseline >= 2 x chance
    assert image_attack_level(image_metrics(0.05))[0] == "low"
    # the same numbers against a strong baseline are no leak
    assert image_attack_level(image_metrics(0.32, baseline=(0.25, 0.0)))[0] == "elevated"
    assert image_attack_level(image_metrics(0.3, baseline=(0.29, 0.0)))[0] == "low"


def test_the_pixel_evaluator_never_decides_and_wide_disagreement_is_said():
    level, reason = image_attack_level(image_metrics(0.05, pixel=1.0))
    assert level == "low"
    assert "disagree widely" in reason and "38 of the 40" in reason


def test_without_a_baseline_chance_stands_in_and_the_reason_says_so():
    level, reason = image_attack_level(image_metrics(0.3, baseline=None))
    assert level == "high" and "baseline unavailable: imported model" in reason


def test_an_interval_across_a_threshold_is_said():
    _, reason = image_attack_level(image_metrics(0.55))  # [45%, 65%] less 2.5% spans high and critical
    assert "interval spans high to critical" in reason


def tabular_metrics(accuracy: float, prior: float, population: float | None = None) -> dict:
    part = {"n": 2805, "accuracy": accuracy, "baseline_accuracy": prior, "ideal_accuracy": 0.67,
            "population_accuracy": prior if population is None else population, "mcc": 0.3, "gmean": 0.5,
            "recall": {}}
    return {**part, "train": part}


def test_tabular_levels_use_the_advantage_on_training_records():
    assert tabular_attack_level(tabular_metrics(0.70, 0.37))[0] == "critical"
    assert tabular_attack_level(tabular_metrics(0.53, 0.37))[0] == "high"
    assert tabular_attack_level(tabular_metrics(0.41, 0.37))[0] == "elevated"
    assert tabular_attack_level(tabular_metrics(0.38, 0.37))[0] == "low"


def test_what_population_data_give_without_the_model_is_not_counted_as_the_models_leak():
    # IWPC: the learned attack matches a classifier on the attacker's population sample
    level, reason = tabular_attack_level(tabular_metrics(0.675, 0.367, population=0.676))
    assert level == "low"
    assert "population sample" in reason and "against the prior alone this would be critical" in reason
    level, reason = tabular_attack_level(tabular_metrics(0.782, 0.367, population=0.676))  # gbm, the model's own dose
    assert level == "high" and "the model adds +11%" in reason and "95% CI" in reason
    # a population classifier below the prior does not lower the bar
    assert tabular_attack_level(tabular_metrics(0.70, 0.37, population=0.2))[0] == "critical"


def test_a_threat_model_inherits_the_attacks_of_less_revealing_access():
    plan = build_plan("image", parse_accesses("white-box,scores,label-only"), None, {})
    results = {
        "white-box-miface": {"metrics": image_metrics(0.05)},
        "white-box-miface-grey": {"metrics": image_metrics(0.04)},
        "scores-blackbox": {"metrics": image_metrics(0.02)},
        "label-only-repulsion": {"metrics": image_metrics(0.3)},
    }
    verdict = threat_verdicts(plan, results, image_attack_level)
    assert verdict["by_threat_model"]["white-box"]["level"] == "high"  # the label-only attack works for it too
    assert verdict["by_threat_model"]["scores"]["decided_by"] == "label-only-repulsion"
    assert verdict["overall"] == "high"


def test_of_two_attacks_at_the_same_level_the_stronger_decides_the_threat_model():
    plan = build_plan("image", parse_accesses("white-box"), None, {})
    results = {"white-box-miface": {"metrics": image_metrics(0.55)},  # both critical; grey 20 points stronger
               "white-box-miface-grey": {"metrics": image_metrics(0.75)}}
    assert [unit.id for unit in plan.units][:2] == ["white-box-miface", "white-box-miface-grey"]
    verdict = threat_verdicts(plan, results, image_attack_level, image_success)
    decision = verdict["by_threat_model"]["white-box"]
    assert decision["level"] == "critical" and decision["decided_by"] == "white-box-miface-grey"
    assert "75%" in decision["reason"]
    assert threat_verdicts(plan, results, image_attack_level)["by_threat_model"]["white-box"]["decided_by"] == (
        "white-box-miface")  # without a strength, the plan's order


def segmentation_metrics(reid, ssim=0.5, chance=0.01):
    return {"reid_top1": reid, "reid_top1_ci": [0.0, 1.0], "reid_top5": reid, "ssim_mean": ssim,
            "ssim_brain_mean": ssim, "chance_top1": chance}


def segmentation_result(output, reid, ssim=0.5, chance=0.01):
    return {"metrics": segmentation_metrics(reid, ssim, chance), "threat_model": {"output_type": output},
            "queries_used": 120}


def test_segmentation_levels_use_re_identification_and_skipped_threat_models_get_no_verdict():
    assert segmentation_attack_level(segmentation_metrics(0.6, 0.5))[0] == "critical"
    assert segmentation_attack_level(segmentation_metrics(0.02, 0.2))[0] == "low"
    plan = build_plan("segmentation", parse_accesses("scores,top-k,label-only"), None, {})
    results = {"scores-decoder": segmentation_result("probs", 0.9, 0.6),
               "label-only-decoder": segmentation_result("labels", 0.04, 0.3)}
    verdict = threat_verdicts(plan, results, segmentation_attack_level)
    assert set(verdict["by_threat_model"]) == {"scores", "label-only"}
    assert verdict["by_threat_model"]["label-only"]["level"] == "elevated"  # 4% >= 3 x chance
    advice = segmentation_recommendations(plan, results)
    assert advice[0]["action"].startswith("Share label maps only") and "90% -> 4%" in advice[0]["effect"]
    assert "not a complete defence" in advice[0]["effect"]
    results["label-only-decoder"] = segmentation_result("labels", 0.9, 0.45)  # as measured on IXI: labels keep identity
    advice = segmentation_recommendations(plan, results)
    assert advice[0]["action"] == "Do not count on serving label maps to protect the patients."
    assert "90% -> 90%, SSIM 0.60 -> 0.45" in advice[0]["effect"]


def test_the_policy_matrix_recommends_the_best_policy_that_keeps_accuracy_and_calibration_or_warns():
    def row(policy, identification, accuracy, calibration=0.05, access="scores"):
        return PolicyRow(policy=policy, access=access, attack=f"{access}-{policy}", judge_top1=identification,
                         judge_top1_ci=(0.0, 1.0), face_rate=1.0, reid_top1=identification,
                         identification_top1=identification, queries_used=100, accuracy=accuracy,
                         calibration_error=calibration).to_json()

    plan = build_plan("image", parse_accesses("scores"), None, {})
    results = {"scores-blackbox": {"metrics": image_metrics(0.8), "queries_used": 100}}
    rows = [row("scores", 0.8, 0.95), row("round:1", 0.7, 0.95), row("noise:laplace:0.5", 0.1, 0.60),
            row("reverse-sigmoid:0.5,0.1", 0.05, 0.95, calibration=0.8), row("label", 0.3, 0.95, None, "label-only")]
    advice = image_recommendations(plan, results, None, {"policy_matrix": rows})
    (chosen,) = [r for r in advice if "serve them as" in r["action"]]
    assert chosen["action"] == "If scores must be served, serve them as round:1."
    assert "80% -> 70%" in chosen["effect"] and "not a complete defence" in chosen["effect"]
    rows[1] = row("round:1", 0.78, 0.95)
    advice = image_recommendations(plan, results, None, {"policy_matrix": rows})
    warning = next(r for r in advice if r["action"].startswith("Do not rely on"))
    assert "5%-78% (vs 80% with full scores)" in warning["effect"]
