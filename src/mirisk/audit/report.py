"""The audit report: ``report.json`` (schema ``mirisk-report/3``, documented in
docs/audit.md) and a self-contained ``report.html`` rendered from it (no external assets:
figures are embedded; with redaction there are no images at all)."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from matplotlib.figure import Figure

from mirisk.audit.case import AuditCase, UnitResult
from mirisk.audit.checks import CLASSIC_SWEEP_UNITS
from mirisk.audit.kinds import case_for
from mirisk.audit.plan import AuditPlan
from mirisk.audit.verdict import LEVELS, threat_verdicts
from mirisk.errors import MiriskError
from mirisk.figures import png_bytes, privacy_sweep_plot
from mirisk.pipelines.face_sweep import SWEEP_ATTACKS
from mirisk.runtime import versions

Figures = Callable[[str], bytes | None]  # an artefact's path in the audit folder -> its bytes (None: absent)

SCHEMA = "mirisk-report/3"
READABLE_SCHEMAS = ("mirisk-report/2", SCHEMA)  # 3: face attacks judged independently, with baselines
CITATIONS = {
    "miface": "Fredrikson, Jha & Ristenpart, \"Model Inversion Attacks that Exploit Confidence Information and "
              "Basic Countermeasures\", ACM CCS 2015 (Algorithm 1, MI-Face).",
    "blackbox": "Score-based black-box inversion: natural-evolution-strategy gradient estimates (Ilyas et al., "
                "ICML 2018) of the MI-Face cost over a DCT image basis, through a counted oracle.",
    "labelonly": "Label-only inversion by boundary repulsion, after BREP-MI (Kahla et al., CVPR 2022).",
    "generative": "Zhang, Jia, Pei, Wang, Li & Song, \"The Secret Revealer: Generative Model-Inversion Attacks "
                  "Against Deep Neural Networks\", CVPR 2020 (GMI), in the latent space of a face prior learnt from "
                  "other people.",
    "generative-scores": "Score-based black-box inversion (NES gradient estimates, Ilyas et al., ICML 2018) in the "
                         "latent space of a face prior learnt from other people (GMI's prior, Zhang et al., CVPR "
                         "2020), through a counted oracle.",
    "generative-labelonly": "Kahla, Chen, Just & Jia, \"Label-Only Model Inversion Attacks via Boundary Repulsion\", "
                            "CVPR 2022 (BREP-MI), in the latent space of a face prior learnt from other people.",
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


def build_report(plan: AuditPlan, case: AuditCase, description: dict[str, Any], results: dict[str, UnitResult],
                 vulnerability: dict[str, Any], at_risk: Any, defences: dict[str, Any], redact: bool,
                 seconds: float) -> dict[str, Any]:
    """Everything the HTML shows, as one JSON document. ``defences`` holds what was
    measured of them: ``dp_sweep`` (DP-SGD retrains), ``budget_checks`` (query budgets),
    ``policy_matrix`` (output policies)."""
    payloads = {unit_id: result.payload for unit_id, result in results.items()}
    verdict = threat_verdicts(plan, payloads, case.attack_level, case.attack_strength)
    attacks = []
    for unit in plan.units:
        payload = results[unit.id].payload
        attacks.append({
            "id": unit.id, "attack": unit.attack, "access": unit.access.value, "policy": unit.policy,
            "level": verdict["by_attack"][unit.id]["level"], "reason": verdict["by_attack"][unit.id]["reason"],
            "metrics": case.headline(payload["metrics"]),
            "queries_used": payload.get("queries_used"), "seconds": payload.get("seconds"),
            "policy_cost": payload.get("policy_cost"), "citation": CITATIONS[unit.attack],
            "threat_model": payload["threat_model"],
            "stopped_by_gateway": payload.get("deployment", {}).get("stopped_by_gateway", []),
            "artifacts": {} if redact else {name: f"attacks/{unit.id}/{name}.png" for name in ("reconstructions", "lineup")
                                            if f"{name}.png" in results[unit.id].files},
        })
    return {
        "schema": SCHEMA,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "model": description,
        "plan": plan.as_dict(),
        "verdict": {"overall": verdict["overall"], "by_threat_model": verdict["by_threat_model"]},
        "levels": list(LEVELS),
        "threat_models_skipped": plan.skipped,
        "attacks_untested": plan.settings.get("untested", {}),
        "attacks": attacks,
        "recommendations": case.recommendations(plan, payloads, description, defences),
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
    names = [attack["id"] for attack in report["attacks"]]
    series, reference_name = case_for(report["plan"]["model_kind"]).chart_series(report["schema"])
    figure = Figure(figsize=(7, 0.6 * len(names) * len(series) + 1.2))
    axis = figure.subplots()
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
    if case_for(report["plan"]["model_kind"]).report_labels["dp_table"] == "attacks":
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


def folder_figures(out_dir: Path) -> Figures:
    """The artefacts of an audit folder on disk."""
    return lambda path: (out_dir / path).read_bytes() if (out_dir / path).is_file() else None


def render_html(report: dict[str, Any], artefacts: Figures) -> str:
    """The self-contained page for ``report``, its attack figures read through ``artefacts``."""
    figures: dict[str, str] = {}
    if not report["redacted"]:
        figures["attacks"] = _data_uri(_attack_chart(report))
        dp = _dp_chart(report)
        if dp is not None:
            figures["dp"] = _data_uri(dp)
        for attack in report["attacks"]:
            for name, path in attack["artifacts"].items():
                content = artefacts(path)
                if content is not None:
                    figures[f"{attack['id']}:{name}"] = _data_uri(content)
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("mirisk.audit", "templates"), autoescape=True, undefined=jinja2.StrictUndefined,
    )
    environment.filters["pct"] = lambda value: "-" if value is None else f"{value:.1%}"
    section = case_for(report["plan"]["model_kind"]).report_labels
    return environment.get_template("report.html.j2").render(report=report, figures=figures, section=section,
                                                             classic_sweep_units=CLASSIC_SWEEP_UNITS)


def check_report(payload: Any, path: Path) -> dict[str, Any]:
    """Refuse a JSON document that is not a mirisk report of this schema."""
    if not isinstance(payload, dict) or payload.get("schema") not in READABLE_SCHEMAS:
        found = payload.get("schema") if isinstance(payload, dict) else None
        raise MiriskError(f"{path} is not a {SCHEMA} report" + (f" (it is {found}; run the audit again with this "
                                                                 f"mirisk to get one)" if found else ""))
    return payload
