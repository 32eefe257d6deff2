"""Risk verdicts from measured evidence, by documented rules, and recommendations with their
measured effect. The rules (also in docs/audit.md):

Images (per attack): the excess p over the label-permuted baseline of the better of two
honest measures: the independent judge's identification top-1 (dlib's face recogniser
against held-out photos) and re-identification top-1 from the held-out photos an attacker
could hold; where no baseline could be run, chance c = 1/people stands in for it (and the
reason says so). The pixel evaluator is reported, never decisive.
  critical  p >= 50%        most people the model knows can be reconstructed recognisably
  high      p >= 20%
  elevated  p >= 2c         clearly above the baseline
  low       otherwise       no leak shown by the attacks run (never "safe")
The level comes from the point estimate; the reason gives the 95% Wilson interval and says
where it straddles a threshold.
Segmentation (per decoder attack): re-identification top-1 p of the training patients among
all subjects, against chance c = 1/subjects, with the image thresholds above.
Federated round (per gradient attack, on the replayed round): re-identification top-1 p of
the client images' people among everyone's other images, against chance c = 1/people, with
the image thresholds above.
Tabular (per attack): the advantage a of the attack's accuracy on training records over the
stronger of its two baselines: the prior only, and a classifier trained on the attacker's
population sample with no model (what population data reveal anyway; Jayaraman & Evans,
CCS 2022). The reason also gives the advantage over the prior alone, and the level that
would give where it is higher, with why it does not count:
  critical  a >= 25 points;  high  a >= 10;  elevated  a >= 3;  low  otherwise
A threat model's verdict is the worst over the attacks at its access level or any less
revealing one (an attacker with scores can also use the top label), decided, among attacks
of that level, by the one furthest above its baseline; a threat model the
plan could not test for this kind of model gets no verdict, only its reason. The audit's
verdict is the worst over its threat models.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mirisk.audit.checks import BudgetCheck, DosingRetrain, FaceRetrain, PolicyRow
from mirisk.audit.plan import ACCESS_ORDER, AuditPlan
from mirisk.metrics.attribute import AttributeLeak
from mirisk.metrics.identification import ImageIdentification
from mirisk.metrics.reidentification import RoundReconstruction, ScanReidentification
from mirisk.threats import AccessLevel

LEVELS = ("low", "elevated", "high", "critical")


def level_index(level: str) -> int:
    return LEVELS.index(level)


def identification_level(p: float, chance: float) -> str:
    """The level of a share ``p`` of people identified, against ``chance`` (the image rule)."""
    return "critical" if p >= 0.5 else "high" if p >= 0.2 else "elevated" if p >= 3 * chance else "low"


IMAGE_THRESHOLDS = (("critical", 0.5), ("high", 0.2))
WIDE_DISAGREEMENT = 0.5  # the judge rejects at least half of the people the pixel evaluator names


def image_success(metrics: dict[str, Any]) -> float:
    """The honest headline: the better of the judge's and re-identification's top-1, each less its baseline."""
    measured = ImageIdentification.from_json(metrics)
    judge_base, reid_base, _ = measured.baselines()
    return max(measured.judge.identification_top1 - judge_base, measured.reid_top1 - reid_base)


def _level_of_excess(excess: float, chance: float) -> str:
    for level, threshold in IMAGE_THRESHOLDS:
        if excess >= threshold:
            return level
    return "elevated" if excess >= 2 * chance else "low"


def image_attack_level(metrics: dict[str, Any]) -> tuple[str, str]:
    """Level and the sentences that justify it, for one image attack's metrics (result.json's)."""
    measured = ImageIdentification.from_json(metrics)
    chance, judge = measured.chance_top1, measured.judge
    judge_base, reid_base, base_name = measured.baselines()
    measures = {"judge": (judge.identification_top1, judge.identification_top1_ci, judge_base),
                "re-identification": (measured.reid_top1, measured.reid_top1_ci, reid_base)}
    decisive = max(measures, key=lambda name: measures[name][0] - measures[name][2])
    value, (low, high), base = measures[decisive]
    level = _level_of_excess(value - base, chance)
    gallery = "all photos (training split unknown)" if "unknown" in measured.reid_gallery else "held-out photos"
    reason = (f"independent judge top-1 {judge.identification_top1:.0%} [{judge.identification_top1_ci[0]:.0%}, "
              f"{judge.identification_top1_ci[1]:.0%}] vs {judge_base:.0%}; re-identification from {gallery} "
              f"{measured.reid_top1:.0%} [{measured.reid_top1_ci[0]:.0%}, {measured.reid_top1_ci[1]:.0%}] vs "
              f"{reid_base:.0%} ({base_name}; chance {chance:.1%}); face rate {judge.face_rate:.0%}; pixel evaluator "
              f"{measured.pixel_top1:.0%}")
    low_level, high_level = _level_of_excess(low - base, chance), _level_of_excess(high - base, chance)
    if low_level != high_level:
        reason += f". The {decisive}'s 95% interval spans {low_level} to {high_level}"
    disagreement = measured.disagreement
    if disagreement.pixel_identified >= 3 and disagreement.rate >= WIDE_DISAGREEMENT:
        reason += (f". The evaluators disagree widely: the judge does not recognise {disagreement.judge_rejected} "
                   f"of the {disagreement.pixel_identified} people the pixel evaluator names")
    return level, reason


def tabular_advantage(metrics: dict[str, Any]) -> float:
    """An attribute attack's advantage over the stronger of its baselines (what its level counts)."""
    return AttributeLeak.from_json(metrics["train"]).model_advantage


def segmentation_attack_level(metrics: dict[str, Any]) -> tuple[str, str]:
    """Level and reason for one decoder attack: can the reconstruction be matched back to the patient?"""
    leak = ScanReidentification.from_json(metrics)
    reason = (f"re-identification top-1 {leak.reid_top1:.0%} of the training patients (chance {leak.chance_top1:.1%}); "
              f"SSIM {leak.ssim_mean:.2f} to their own scan")
    return identification_level(leak.reid_top1, leak.chance_top1), reason


def federated_attack_level(metrics: dict[str, Any]) -> tuple[str, str]:
    """Level and reason for one gradient attack on the replayed round."""
    leak = RoundReconstruction.from_json(metrics)
    reason = (f"re-identification top-1 {leak.reid_top1:.0%} of the client images (chance {leak.chance_top1:.1%}); "
              f"SSIM {leak.ssim_mean:.2f}, PSNR {leak.psnr_mean:.1f} dB, labels recovered {leak.label_accuracy:.0%}")
    if leak.judge_top1 is not None and leak.judge_face_rate is not None:
        reason += f"; independent judge top-1 {leak.judge_top1:.0%}, face rate {leak.judge_face_rate:.0%}"
    return identification_level(leak.reid_top1, leak.chance_top1), reason


def advantage_level(advantage: float) -> str:
    """The tabular level of an attack's advantage over its baseline (in accuracy)."""
    return ("critical" if advantage >= 0.25 else "high" if advantage >= 0.10
            else "elevated" if advantage >= 0.03 else "low")


def tabular_attack_level(metrics: dict[str, Any]) -> tuple[str, str]:
    """Level and reason for one attribute attack: its advantage over the stronger baseline."""
    leak = AttributeLeak.from_json(metrics["train"])
    accuracy, prior, population = leak.accuracy, leak.baseline_accuracy, leak.population_accuracy
    advantage = leak.model_advantage
    level = advantage_level(advantage)
    low, high = leak.accuracy_ci
    reason = (f"accuracy {accuracy:.0%} [95% CI {low:.0%}, {high:.0%}] on training records vs {prior:.0%} prior only "
              f"({accuracy - prior:+.0%}) and {population:.0%} for a classifier on the attacker's population sample "
              f"alone, with no model: the model adds {advantage:+.0%} over the stronger of the two")
    prior_level = advantage_level(accuracy - prior)
    if level_index(prior_level) > level_index(level):
        reason += (f"; against the prior alone this would be {prior_level}, but the population sample alone "
                   f"reaches {population:.0%} without the model (a property of the data, not a leak by this model)")
    return level, reason


AttackLevel = Callable[[dict[str, Any]], tuple[str, str]]
AttackStrength = Callable[[dict[str, Any]], float]


def threat_verdicts(plan: AuditPlan, results: dict[str, dict[str, Any]], attack_level: AttackLevel,
                    strength: AttackStrength | None = None) -> dict[str, Any]:
    """Per attack (by the kind's ``attack_level`` rule on its metrics), per threat model (worst
    at that access or below; among attacks of the same level, the strongest by the kind's
    ``strength``, so the reason shown is the strongest evidence) and overall."""
    per_attack = {}
    for unit in plan.units:
        level, reason = attack_level(results[unit.id]["metrics"])
        per_attack[unit.id] = {"level": level, "reason": reason, "access": unit.access.value}
    by_threat = {}
    for access in (access for access in plan.accesses if access.value not in plan.skipped):
        reachable = ACCESS_ORDER[ACCESS_ORDER.index(access):]
        evidence = [unit.id for unit in plan.units if unit.access in reachable]
        if not evidence:
            continue
        worst = max(evidence, key=lambda unit_id: (level_index(per_attack[unit_id]["level"]),
                                                   strength(results[unit_id]["metrics"]) if strength else 0.0))
        by_threat[access.value] = {"level": per_attack[worst]["level"], "decided_by": worst,
                                   "reason": per_attack[worst]["reason"], "evidence": evidence}
    overall = max((v["level"] for v in by_threat.values()), key=level_index, default="low")
    return {"overall": overall, "by_threat_model": by_threat, "by_attack": per_attack}


def _best(plan: AuditPlan, results: dict[str, dict[str, Any]], access) -> tuple[str, float] | None:
    """The strongest image attack measured at exactly ``access`` and its headline number."""
    candidates = [unit for unit in plan.units if unit.access == access]
    if not candidates:
        return None
    best = max(candidates, key=lambda unit: image_success(results[unit.id]["metrics"]))
    return best.id, image_success(results[best.id]["metrics"])


def image_recommendations(plan: AuditPlan, results: dict[str, dict[str, Any]], test_accuracy: float | None,
                          defences: dict[str, Any]) -> list[dict[str, Any]]:
    """Weight secrecy, output restriction, DP training and query limits, each with the
    effect the audit measured."""
    recommendations = []
    white = _best(plan, results, AccessLevel.WHITE_BOX)
    black = [b for b in (_best(plan, results, a) for a in ACCESS_ORDER[1:]) if b]
    if white and black and white[1] > max(b[1] for b in black):
        recommendations.append({
            "action": "Keep the weights private: serve the model only through an API.",
            "effect": f"white-box leak {white[1]:.0%} vs {max(b[1] for b in black):.0%} for the best black-box attack "
                      "(the better of judge identification and held-out re-identification, above the baseline)",
            "measured": True,
        })
    scores = _best(plan, results, AccessLevel.SCORES)
    for access, label in ((AccessLevel.TOP_K, f"only the top {plan.settings['top_k']} scores"),
                          (AccessLevel.LABEL_ONLY, "labels only")):
        restricted = _best(plan, results, access)
        if not (scores and restricted):
            continue
        unit_id = restricted[0]
        cost = results[unit_id].get("policy_cost", {})
        base_cost = results[scores[0]].get("policy_cost", {})
        still = level_index(image_attack_level(results[unit_id]["metrics"])[0]) >= level_index("elevated")
        recommendations.append({
            "action": f"Serve {label}.",
            "effect": f"leak above the baseline (judge or re-identification) {scores[1]:.0%} with full scores -> "
                      f"{restricted[1]:.0%}"
                      + (" (still above the elevated threshold: not a complete defence)" if still else ""),
            "cost": f"accuracy {base_cost.get('accuracy', float('nan')):.1%} -> {cost.get('accuracy', float('nan')):.1%}"
                    + ("; confidence scores withheld" if access is AccessLevel.LABEL_ONLY else ""),
            "measured": True,
        })
    chance = next(iter(results.values()))["metrics"]["chance_top1"]
    recommendations += _policy_matrix_recommendations(
        [PolicyRow.from_json(row) for row in defences.get("policy_matrix") or []], chance)
    recommendations += _image_dp_recommendations(results, test_accuracy,
                                                 [FaceRetrain.from_json(point) for point in defences.get("dp_sweep") or []])
    checks = {check.unit: check for check in map(BudgetCheck.from_json, defences.get("budget_checks") or [])}
    for check in checks.values():
        before = ImageIdentification.from_json(results[check.unit]["metrics"])
        recommendations.append({
            "action": f"Limit queries per API key to about {check.queries_per_person:,.0f} per person "
                      f"({check.budget:,} for the {check.unit} attack on everyone).",
            "effect": f"judge identification {before.judge.identification_top1:.0%} -> {check.judge_top1:.0%}, "
                      f"re-identification {before.reid_top1:.0%} -> {check.reid_top1:.0%} under a tenth of "
                      "the queries the attack used",
            "measured": True,
        })
    for unit in plan.units:
        used = results[unit.id].get("queries_per_target")
        if used and unit.id not in checks:
            recommendations.append({
                "action": f"Limit queries per API key (the {unit.access.value} attack).",
                "effect": f"this attack used {used:,.0f} queries per person; a per-key budget well below that "
                          f"(e.g. {max(1, int(used // 10)):,}) would stop it before it converges",
                "measured": False,
            })
    return recommendations


def segmentation_recommendations(plan: AuditPlan, results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Output restriction (logits -> probabilities -> label maps) with its measured effect,
    and limits on who may query the model with scans of their own."""
    recommendations = []
    by_output = {results[unit.id]["threat_model"]["output_type"]: results[unit.id] for unit in plan.units}
    steps = (("logits", "probs", "Keep the weights and raw logits private; serve probabilities at most.",
              "raw logits"),
             ("probs", "labels", "Share label maps only, never per-pixel probabilities.", "label maps"))
    for richer, poorer, action, restriction in steps:
        if richer not in by_output or poorer not in by_output:
            continue
        before, after = (ScanReidentification.from_json(by_output[output]["metrics"]) for output in (richer, poorer))
        effect = (f"re-identification {before.reid_top1:.0%} -> {after.reid_top1:.0%}, SSIM "
                  f"{before.ssim_mean:.2f} -> {after.ssim_mean:.2f}")
        if after.reid_top1 > before.reid_top1 - USEFUL_DROP:
            recommendations.append({"action": f"Do not count on {'withholding' if poorer == 'probs' else 'serving'} "
                                              f"{restriction} to protect the patients.",
                                    "effect": effect + ": the patients are re-identified as well as before",
                                    "measured": True})
            continue
        still = level_index(identification_level(after.reid_top1, after.chance_top1)) >= level_index("elevated")
        recommendations.append({
            "action": action,
            "effect": effect + (" (still above the elevated threshold: not a complete defence)" if still else ""),
            "cost": "none for a user who needs the segmentation" if poorer == "labels" else "none",
            "measured": True,
        })
    served = next((unit for unit in plan.units if unit.access is not AccessLevel.WHITE_BOX), None)
    if served is not None:
        recommendations.append({
            "action": f"Let only vetted parties query the model ({served.params['output']}), and cap scans per party.",
            "effect": f"the decoder learnt from {results[served.id]['queries_used']:,} scans of other subjects; an "
                      "attacker with far fewer cannot train it as well",
            "measured": False,
        })
    return recommendations


def federated_recommendations(plan: AuditPlan, results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Update noise, with its effect measured on the replay; secure aggregation, derived
    from the round's settings."""
    recommendations = []
    for unit in plan.units:
        payload = results[unit.id]
        check = payload.get("defence_check")
        if check is None:
            continue
        before, after = RoundReconstruction.from_json(payload["metrics"]), RoundReconstruction.from_json(check)
        defence = check["defence"]
        recommendations.append({
            "action": f"Clip each client's update (here at {defence['clip']:.3g}) and add Gaussian noise of "
                      f"{defence['noise']:g} x the clip before it leaves the client.",
            "effect": f"{unit.attack}: re-identification {before.reid_top1:.0%} -> {after.reid_top1:.0%}, SSIM "
                      f"{before.ssim_mean:.2f} -> {after.ssim_mean:.2f} on the replayed round",
            "cost": f"epsilon per round {defence['epsilon_per_round']:.3g}: this stops the optimisers measured here, "
                    "it is no formal privacy guarantee; the accuracy cost needs a training run to measure",
            "measured": True,
        })
    round_settings = next(iter(results.values()))["round"]
    if round_settings["n_clients"] == 1:
        recommendations.append({
            "action": "Aggregate updates securely over many clients, together with the update noise.",
            "effect": "the server here sees one client's own update; secure aggregation alone, over 4-8 clients of "
                      "one image each, did not stop Inverting Gradients (BENCHMARKS.md), so it complements the "
                      "noise rather than replacing it",
            "measured": False,
        })
    return recommendations


ACCURACY_TOLERANCE = 0.02  # a policy "keeps accuracy" when it loses at most 2 points,
CALIBRATION_TOLERANCE = 0.05  # keeps its scores meaningful when calibration error rises by at most 0.05,
USEFUL_DROP = 0.05  # and "helps" when it lowers the attack's success by at least 5 points


def _policy_matrix_recommendations(rows: list[PolicyRow], chance: float) -> list[dict[str, Any]]:
    """The score-revealing policy that lowers the score attack's success most (the better of
    identification and re-identification, as in the verdict) while keeping accuracy and
    calibration; or, when none does, a measured warning not to rely on them."""
    # the strongest attack through full scores: the one the other policies were attacked with
    full = max((row for row in rows if row.policy == "scores"), key=lambda row: row.success, default=None)
    if full is None:
        return []
    candidates = [row for row in rows if row.access == "scores" and row.policy != "scores"]
    useful = [row for row in candidates if row.success <= full.success - USEFUL_DROP
              and row.accuracy >= full.accuracy - ACCURACY_TOLERANCE
              and row.calibration_error is not None and full.calibration_error is not None
              and row.calibration_error <= full.calibration_error + CALIBRATION_TOLERANCE]
    if useful:
        best = min(useful, key=lambda row: row.success)
        level = identification_level(best.success, chance)
        return [{
            "action": f"If scores must be served, serve them as {best.policy}.",
            "effect": f"score black-box judge identification {full.judge_top1:.0%} -> "
                      f"{best.judge_top1:.0%}, re-identification {full.reid_top1:.0%} -> "
                      f"{best.reid_top1:.0%}" + (" (still above the elevated threshold: not a complete defence)"
                                                 if level_index(level) >= level_index("elevated") else ""),
            "cost": f"accuracy {full.accuracy:.1%} -> {best.accuracy:.1%}; calibration error "
                    f"{full.calibration_error:.3f} -> {best.calibration_error:.3f}"
                    + ("; the noise is drawn afresh for each query, so an attacker who repeats queries averages it "
                       "away: pair it with a per-key query budget" if "noise:" in best.policy else ""),
            "measured": True,
        }]
    if not candidates:
        return []
    successes = [row.success for row in candidates]
    return [{
        "action": "Do not rely on rounding, noising or reshaping the scores.",
        "effect": f"{', '.join(row.policy for row in candidates)}: the score attack still reaches "
                  f"{min(successes):.0%}-{max(successes):.0%} (vs "
                  f"{full.success:.0%} with full scores), or the policy costs accuracy or calibration",
        "measured": True,
    }]


SWEEP_LABELS = {"white-box": "white-box", "scores": "score black-box"}


def _image_dp_recommendations(results: dict[str, dict[str, Any]], test_accuracy: float | None,
                              retrains: list[FaceRetrain]) -> list[dict[str, Any]]:
    """One per epsilon: each attack's judge identification and held-out re-identification on
    the audited model -> on the DP retrain (the attack the retrain was measured with)."""
    recommendations = []
    for retrain in retrains:
        effects = []
        for access, after in retrain.attacks.items():
            measured = results.get(after.unit, {}).get("metrics")
            before = None if measured is None else ImageIdentification.from_json(measured)
            judge = (f"{before.judge.identification_top1:.1%} -> " if before else "") + f"{after.judge_top1:.1%}"
            reid = (f"{before.reid_top1:.1%} -> " if before else "") + f"{after.reid_top1:.1%}"
            effects.append(f"{SWEEP_LABELS[access]} ({after.unit}): judge identification {judge}, "
                           f"re-identification {reid}")
        recommendations.append({
            "action": f"Train with DP-SGD at epsilon {retrain.epsilon:g}.",
            "effect": "; ".join(effects) + f" (chance {retrain.chance_top1:.1%})",
            "cost": f"test accuracy {'' if test_accuracy is None else f'{test_accuracy:.1%} -> '}"
                    f"{retrain.test_accuracy:.1%}",
            "measured": True,
        })
    return recommendations


def tabular_recommendations(plan: AuditPlan, results: dict[str, dict[str, Any]],
                            dp_sweep: list[dict[str, Any]] | None, classifier: bool = False) -> list[dict[str, Any]]:
    """Band serving (a classifier: labels only), not disclosing the model's own output, and DP
    training, with measured effects."""
    recommendations = []
    value, band = results.get("scores-fredrikson"), results.get("label-only-fredrikson")
    if value and band:
        recommendations.append({
            "action": ("Serve the predicted class only, not its probabilities." if classifier
                       else "Serve output bands instead of values."),
            "effect": f"Fredrikson attack {value['metrics']['train']['accuracy']:.0%} -> "
                      f"{band['metrics']['train']['accuracy']:.0%} on training records"
                      + (f"; the learned attack on {'labels' if classifier else 'bands'} still reaches "
                         f"{results['label-only-learned']['metrics']['train']['accuracy']:.0%}"
                         if "label-only-learned" in results else ""),
            "measured": True,
        })
    model_outcome = results.get("scores-fredrikson-model-outcome")
    if model_outcome and value:
        recommendations.append({
            "action": "Do not disclose the model's output for a person to third parties.",
            "effect": f"an attacker who sees the model's own output for a person infers the sensitive value for "
                      f"{model_outcome['metrics']['train']['accuracy']:.0%} (vs {value['metrics']['train']['accuracy']:.0%} "
                      "from the recorded outcome)",
            "measured": True,
        })
    if dp_sweep:
        retrains = [DosingRetrain.from_json(point, plan.settings["sensitive"]) for point in dp_sweep]
        public = next(retrain for retrain in retrains if retrain.epsilon is None)
        for retrain in retrains:
            if retrain.epsilon is None:
                continue
            recommendations.append({
                "action": f"Train with DP-SGD at epsilon {retrain.epsilon:g}.",
                "effect": f"attack {public.attack_accuracy:.0%} -> {retrain.attack_accuracy:.0%}",
                "cost": f"held-out MAE {public.mae:.1f} -> {retrain.mae:.1f}; within 20% "
                        f"{public.within_20pct:.0%} -> {retrain.within_20pct:.0%}",
                "measured": True,
            })
    else:
        recommendations.append({
            "action": "Train with differential privacy (DP-SGD for this model form, or a DP learner for its family).",
            "effect": "not measured: mirisk retrains only the linear IWPC models it trained itself; train a private "
                      "copy and audit it beside this one to see what it costs and what it stops",
            "measured": False,
        })
    if AccessLevel.SCORES in plan.accesses and plan.budget is None:
        queries = sum(results[unit.id]["queries_used"] for unit in plan.units if unit.access is AccessLevel.SCORES)
        recommendations.append({
            "action": "Limit and monitor queries per API key.",
            "effect": f"the score-level attacks used {queries:,} queries in all",
            "measured": False,
        })
    return recommendations
