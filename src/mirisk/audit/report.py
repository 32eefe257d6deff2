"""The audit report: ``report.json`` (schema ``mirisk-report/2``, documented in
docs/audit.md) and a self-contained ``report.html`` rendered from it (no external assets:
figures are embedded; with redaction there are no images at all)."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Any

import jinja2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mirisk.audit.plan import AuditPlan  # noqa: E402
from mirisk.audit.verdict import (  # noqa: E402
    LEVELS, federated_recommendations, image_baselines, image_recommendations, segmentation_recommendations,
    tabular_recommendations, threat_verdicts,
)
from mirisk.errors import MiriskError  # noqa: E402
from mirisk.figures import png_bytes, privacy_sweep_plot  # noqa: E402
from mirisk.pipelines.face_sweep import SWEEP_ATTACKS  # noqa: E402
from mirisk.runtime import versions  # noqa: E402

SCHEMA = "mirisk-report/3"
READABLE_SCHEMAS = ("mirisk-report/2", SCHEMA)  # 3: face attacks judged independently, with baselines
CITATIONS = {
    "miface": "Fredrikson, Jha & Ristenpart, \"Model Inversion Attacks that Exploit Confidence Information and "
              "Basic Countermeasures\", ACM CCS 2015 (Algorithm 1, MI-Face).",
    "blackbox": "Score-based black-box inversion: natural-evolution-strategy gradient estimates (Ilyas et al., "
                "ICML 2018) of the MI-Face cost over a DCT image basis, through a counted oracle.",
    "labelonly": "Label-only inversion by boundary repulsion, after BREP-MI (Kahla et al., CVPR 2022).",
    "fredrikson": "Fredrikson, Lantz, Jha, Lin, Page & Ristenpart, \"Privacy in Pharmacogenetics: An End-to-End "
                  "Case Study of Personalized Warfarin Dosing\", USENIX Security 2014.",
    "learned": "Learned black-box inversion from shadow data (after Yang et al., ACM CCS 2019).",
    "dlg": "Zhu, Liu & Han, \"Deep Leakage from Gradients\", NeurIPS 2019, on a replay of the round.",
    "idlg": "Zhao, Mopuri & Bilen, \"iDLG: Improved Deep Leakage from Gradients\", 2020 (the label read off the "
            "last layer's gradient), on a replay of the round.",
    "inverting-gradients": "Geiping, Bauermeister, Droege & Moeller, \"Inverting Gradients - How easy is it to break "
                           "privacy in federated learning?\", NeurIPS 2020, on a replay of the round.",
    "decoder": "Subbanna, Wilms, Tuladhar & Forkert, \"An Analysis of the Vulnerability of Two Common Deep Learning-"
               "Based Medical Image Segmentation Techniques to Model Inversion Attacks\", Sensors 2021 (a decoder "
               "trained on the attacker's own scans inverts the model's outputs).",
}


def _headline(kind: str, metrics: dict[str, Any]) -> dict[str, float]:
    if kind == "image":
        judge_base, reid_base, base_name = image_baselines(metrics)
        return {key: metrics[key] for key in ("identification_top1", "identification_top5", "reid_top1",
                                              "reid_top1_ci", "ssim_mean", "chance_top1")} | {
            "judge_top1": metrics["independent"]["identification_top1"],
            "judge_top1_ci": metrics["independent"]["identification_top1_ci"],
            "judge_top5": metrics["independent"]["identification_top5"],
            "face_rate": metrics["independent"]["face_rate"],
            "baseline_judge_top1": judge_base, "baseline_reid_top1": reid_base, "baseline": base_name,
            "evaluator_disagreement": metrics["evaluator_disagreement"]}
    if kind == "segmentation":
        return {key: metrics[key] for key in ("reid_top1", "reid_top5", "ssim_mean", "ssim_brain_mean", "chance_top1")}
    if kind == "federated":
        return {key: metrics[key] for key in ("reid_top1", "ssim_mean", "psnr_mean", "label_accuracy", "chance_top1")}
    train = metrics["train"] or metrics
    return {key: train[key] for key in ("accuracy", "baseline_accuracy", "population_accuracy", "ideal_accuracy",
                                         "advantage", "mcc")} | {
        "test_accuracy": metrics["test"]["accuracy"] if metrics["test"] else None}


def build_report(plan: AuditPlan, subject_description: dict[str, Any], results: dict[str, dict[str, Any]],
                 vulnerability: dict[str, Any], at_risk: Any, defences: dict[str, Any],
                 redact: bool, seconds: float, out_dir: Path) -> dict[str, Any]:
    """Everything the HTML shows, as one JSON document. ``defences`` holds what was
    measured of them: ``dp_sweep`` (DP-SGD retrains), ``budget_checks`` (query budgets)."""
    verdict = threat_verdicts(plan, results)
    if plan.model_kind == "image":
        recommendations = image_recommendations(plan, results, subject_description["metrics"].get("test_accuracy"),
                                                defences)
    elif plan.model_kind == "segmentation":
        recommendations = segmentation_recommendations(plan, results)
    elif plan.model_kind == "federated":
        recommendations = federated_recommendations(plan, results)
    else:
        recommendations = tabular_recommendations(plan, results, defences.get("dp_sweep"))
    attacks = []
    for unit in plan.units:
        payload = results[unit.id]
        png = out_dir / "attacks" / unit.id / "reconstructions.png"
        lineup = out_dir / "attacks" / unit.id / "lineup.png"
        attacks.append({
            "id": unit.id, "attack": unit.attack, "access": unit.access.value, "policy": unit.policy,
            "level": verdict["by_attack"][unit.id]["level"], "reason": verdict["by_attack"][unit.id]["reason"],
            "metrics": _headline(plan.model_kind, payload["metrics"]),
            "queries_used": payload.get("queries_used"), "seconds": payload.get("seconds"),
            "policy_cost": payload.get("policy_cost"), "citation": CITATIONS[unit.attack],
            "threat_model": payload["threat_model"],
            "stopped_by_gateway": payload.get("deployment", {}).get("stopped_by_gateway", []),
            "artifacts": {} if redact else {name: str(path.relative_to(out_dir)) for name, path in
                                            (("reconstructions", png), ("lineup", lineup)) if path.is_file()},
        })
    return {
        "schema": SCHEMA,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "model": subject_description,
        "plan": plan.as_dict(),
        "verdict": {"overall": verdict["overall"], "by_threat_model": verdict["by_threat_model"]},
        "levels": list(LEVELS),
        "threat_models_skipped": plan.skipped,
        "attacks": attacks,
        "recommendations": recommendations,
        "vulnerability": vulnerability,
        "at_risk": at_risk,
        "defences": defences,
        "redacted": redact,
        "seconds": seconds,
        "versions": versions(),
    }


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _attack_chart(report: dict[str, Any]) -> bytes:
    """Bars: each attack's headline against its reference (chance, prior only, or the
    label-permuted baseline). Face attacks show both deciding measures: the independent
    judge and re-identification from held-out photos."""
    kind = report["plan"]["model_kind"]
    names = [attack["id"] for attack in report["attacks"]]
    judged = kind == "image" and report["schema"] != "mirisk-report/2"
    series = {
        "image": [("identification_top1", "chance_top1", "identification top-1 (pixel evaluator)")],
        "segmentation": [("reid_top1", "chance_top1", "re-identification top-1 of the training patients")],
        "federated": [("reid_top1", "chance_top1", "re-identification top-1 of the replayed client images")],
        "tabular": [("accuracy", "baseline_accuracy", "attack accuracy (training records)")],
    }[kind]
    if judged:
        series = [("judge_top1", "baseline_judge_top1", "independent judge top-1"),
                  ("reid_top1", "baseline_reid_top1", "re-identification from held-out photos")]
    reference_name = {"tabular": "prior only"}.get(kind, "label-permuted baseline" if judged else "chance")
    figure, axis = plt.subplots(figsize=(7, 0.6 * len(names) * len(series) + 1.2))
    height = 0.8 / len(series)
    for index, ((key, reference, label), colour) in enumerate(zip(series, ("#b22222", "#1f5fa8"))):
        rows = [position - 0.4 + height * (index + 0.5) for position in range(len(names))]
        axis.barh(rows, [attack["metrics"][key] for attack in report["attacks"]], height=height, color=colour,
                  label=label)
        axis.scatter([attack["metrics"][reference] for attack in report["attacks"]], rows, marker="|", s=200,
                     color="black", label=reference_name if index == 0 else None)
    axis.set_yticks(range(len(names)), names)
    axis.set_xlim(0, 1)
    axis.invert_yaxis()
    axis.legend(loc="lower left", bbox_to_anchor=(0, 1.0), fontsize=8, ncol=2, frameon=False)
    figure.tight_layout()
    return png_bytes(figure)


def _dp_chart(report: dict[str, Any]) -> bytes | None:
    points = report["defences"].get("dp_sweep")
    if not points:
        return None
    if report["plan"]["model_kind"] == "image":
        key, label = (("identification_top1", "identification") if report["schema"] == "mirisk-report/2"
                      else ("judge_top1", "judge identification"))
        return privacy_sweep_plot(
            [point["epsilon"] for point in points],
            {f"{attack} {label}": [point[attack][key] for point in points]
             for attack in SWEEP_ATTACKS},
            ("test accuracy", [point["test_accuracy"] for point in points]),
            {"chance": points[0]["chance_top1"]}, "DP-SGD retrains: identification and accuracy by epsilon",
        )
    sensitive = report["model"].get("sensitive")
    return privacy_sweep_plot(
        [point["epsilon"] for point in points],
        {f"{sensitive} attack (training records)": [point[f"{sensitive}_true_train"] for point in points]},
        ("within 20% of the true value (held-out)", [point["within_20pct"] for point in points]),
        {"prior only": points[0][f"{sensitive}_baseline"]}, "DP-SGD: attack accuracy and utility by epsilon",
    )


def render_html(report: dict[str, Any], out_dir: Path) -> str:
    """The self-contained page for ``report`` (``out_dir`` holds the attack artefacts)."""
    figures: dict[str, str] = {}
    if not report["redacted"]:
        figures["attacks"] = _data_uri(_attack_chart(report))
        dp = _dp_chart(report)
        if dp is not None:
            figures["dp"] = _data_uri(dp)
        for attack in report["attacks"]:
            for name, path in attack["artifacts"].items():
                if (out_dir / path).is_file():
                    figures[f"{attack['id']}:{name}"] = _data_uri((out_dir / path).read_bytes())
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("mirisk.audit", "templates"), autoescape=True, undefined=jinja2.StrictUndefined,
    )
    environment.filters["pct"] = lambda value: "-" if value is None else f"{value:.1%}"
    return environment.get_template("report.html.j2").render(report=report, figures=figures)


def check_report(payload: Any, path: Path) -> dict[str, Any]:
    """Refuse a JSON document that is not a mirisk report of this schema."""
    if not isinstance(payload, dict) or payload.get("schema") not in READABLE_SCHEMAS:
        found = payload.get("schema") if isinstance(payload, dict) else None
        raise MiriskError(f"{path} is not a {SCHEMA} report" + (f" (it is {found}; run the audit again with this "
                                                                 f"mirisk to get one)" if found else ""))
    return payload
