"""Face commands: train face recognisers, invert them (white-box, scores, labels), judge output policies."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from mirisk.access.oracle import Oracle, QueryAccess
from mirisk.access.remote import RemoteOracle
from mirisk.access.policies import parse_policy
from mirisk.access.whitebox import WhiteBoxAccess
from mirisk.artifacts import prepare_output_dir, write_bytes, write_json
from mirisk.attacks.basis import CodeSpace, ImageBasis, dct_basis, public_face_basis
from mirisk.attacks.blackbox import ScoreBlackBox
from mirisk.attacks.contract import Attack
from mirisk.attacks.labelonly import BoundaryRepulsion
from mirisk.attacks.miface import TotalVariationPrior
from mirisk.cli.common import (
    ApiKeyOption, EndpointOption, attack_app, console, demo_app, friendly_errors, progress_bar, seed_option, train_app,
    with_import_options,
)
from mirisk.data.images import ImageDataset, load_image_folder
from mirisk.data.faces import BUNDLED, default_training_photos, load_faces
from mirisk.defences import DPSettings, TrainingDefences
from mirisk.errors import MiriskError
from mirisk.figures import policy_matrix_heatmap
from mirisk.models.imported import ImportSpec
from mirisk.models.loading import load_image_target
from mirisk.models.store import save_target
from mirisk.models.target import TargetModel
from mirisk.models.training import TrainingConfig
from mirisk.pipelines.matrix import DEFAULT_POLICIES, PolicyMatrix
from mirisk.pipelines.face_attack import attack_faces
from mirisk.pipelines.faces import (
    DEFAULT_MIFACE,
    FaceInversionReport,
    configured_miface,
    default_training,
    target_split,
    train_face_target,
    write_inversion_outputs,
)


class FaceArchitecture(str, Enum):
    softmax = "softmax"
    mlp = "mlp"
    cnn = "cnn"


DataOption = Annotated[
    str, typer.Option("--data", help=f"Face folder (one sub-folder per person), {BUNDLED} (and its _private and "
                                     "_public halves), bundled:lfw_private, lfw_private:DIR or lfw_public:DIR.")
]
BaselineOption = Annotated[bool, typer.Option(
    help="Also run the attack on a twin trained with permuted person labels: the baseline the attack must beat "
         "(about doubles the time).")]


@train_app.command("faces")
@friendly_errors
def train_faces(
    out: Annotated[Path, typer.Option(help="New folder for the model (safetensors + JSON).")],
    model: Annotated[FaceArchitecture, typer.Option(help="Model family.")] = FaceArchitecture.mlp,
    data: DataOption = BUNDLED,
    n_train: Annotated[int | None, typer.Option(help="Training photos per person; the rest are held out (default: "
                                                     "the data's own split: 14 for LFW's private people, else 7).")]
    = None,
    epochs: Annotated[int | None, typer.Option(help="Training epochs (default: the family's).")] = None,
    seed: Annotated[int, seed_option("Seed for the split and training.")] = 0,
    dp_epsilon: Annotated[float | None, typer.Option(help="Train with DP-SGD to this epsilon (PRV accountant).")] = None,
    dp_delta: Annotated[float, typer.Option(help="DP delta.")] = 1e-5,
    dp_clip: Annotated[float, typer.Option(help="DP-SGD per-example clipping norm.")] = 1.0,
    weight_decay: Annotated[float, typer.Option(help="L2 weight decay.")] = 0.0,
    dropout: Annotated[float, typer.Option(help="Dropout rate (softmax: on the input pixels).")] = 0.0,
    early_stopping: Annotated[int | None, typer.Option(help="Stop after this many epochs without validation "
                                                            "improvement (one photo per person held back).")] = None,
    label_smoothing: Annotated[float, typer.Option(help="Label smoothing in [-1, 1); negative values are allowed "
                                                        "(Struppek et al. 2024).")] = 0.0,
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty output folder.")] = False,
) -> None:
    """Train a face recogniser on a per-person split, with any training-time defences, and save it safely."""
    defences = TrainingDefences(
        dp=None if dp_epsilon is None else DPSettings(dp_epsilon, dp_delta, dp_clip), weight_decay=weight_decay,
        dropout=dropout, early_stopping=early_stopping, label_smoothing=label_smoothing,
    )
    prepare_output_dir(out, force=force)
    dataset = load_faces(data)
    config = default_training(model.value, private=defences.dp is not None)
    config = TrainingConfig(**{**config.as_dict(), "seed": seed, **({"epochs": epochs} if epochs else {})})
    with progress_bar(f"training {model.value} on {dataset.n_classes} people", config.epochs) as update:
        per_person = n_train if n_train is not None else default_training_photos(dataset)
        target = train_face_target(model.value, dataset, n_train=per_person,
                                   split_seed=seed, config=config,
                                   progress=update, defences=defences)
    save_target(target, out, force=True)
    dp = target.training.get("dp")
    privacy = f", DP ε={dp['epsilon']:.2f} (δ={dp['delta']:g}, σ={dp['noise_multiplier']:.2f})" if dp else ""
    console.print(
        f"{model.value}: train accuracy {target.metrics['train_accuracy']:.1%}, "
        f"test accuracy {target.metrics['test_accuracy']:.1%}{privacy} -> {out}"
    )


@attack_app.command("miface")
@friendly_errors
@with_import_options
def attack_miface(
    model: Annotated[Path, typer.Option(help="Model folder written by `mirisk train`, or a model file (TorchScript, "
                                             ".pt2, ONNX, skops, safetensors).")],
    out: Annotated[Path, typer.Option(help="New folder for result.json and the reconstructions.")],
    data: DataOption = BUNDLED,
    iterations: Annotated[int, typer.Option(help="Most gradient steps (the paper's alpha).")] = DEFAULT_MIFACE.iterations,
    learning_rate: Annotated[float, typer.Option(help="Step size (lambda).")] = DEFAULT_MIFACE.learning_rate,
    patience: Annotated[int, typer.Option(help="Stop after this many steps without improvement (beta).")] = DEFAULT_MIFACE.patience,
    cost_threshold: Annotated[float, typer.Option(help="Stop once 1 - confidence is at most this (gamma).")] = DEFAULT_MIFACE.cost_threshold,
    tv_weight: Annotated[float, typer.Option(help="Weight of a total-variation image prior (0: none).")] = 0.0,
    start: Annotated[float, typer.Option(help="Starting grey level as a fraction of the value range.")] = 0.0,
    seed: Annotated[int, seed_option("Seed recorded with the result (evaluator, baseline's label permutation).")] = 0,
    baseline: BaselineOption = True,
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty output folder.")] = False,
    spec: ImportSpec | None = None,
) -> None:
    """White-box MI-Face (Fredrikson et al., CCS 2015): reconstruct every person the model knows."""
    out_dir = prepare_output_dir(out, force=force)
    dataset = load_faces(data)
    target = load_image_target(model, spec, dataset)
    attack = configured_miface(
        iterations=iterations, learning_rate=learning_rate, patience=patience, cost_threshold=cost_threshold,
        start=start, prior=TotalVariationPrior(tv_weight) if tv_weight > 0 else None,
    )
    report = run_and_measure(f"MI-Face on {target.architecture}", target, dataset, attack, WhiteBoxAccess, seed,
                             baseline)
    write_inversion_outputs(out_dir, report, target.class_names)
    console.print(summary_table([report.payload]))
    console.print(f"wrote {out_dir}/result.json, reconstructions.png, reconstructions.npz (owner-only)")


@attack_app.command("blackbox")
@friendly_errors
@with_import_options
def attack_blackbox(
    model: Annotated[Path, typer.Option(help="Model folder written by `mirisk train`, or a model file (TorchScript, "
                                             ".pt2, ONNX, skops, safetensors).")],
    out: Annotated[Path, typer.Option(help="New folder for result.json and the reconstructions.")],
    policy: Annotated[str, typer.Option(help="What the oracle reveals: scores, topk:K, round:D, noise:laplace:S, "
                                             "reverse-sigmoid:B,G, label; join with +.")] = "scores",
    budget: Annotated[int | None, typer.Option(help="Total query budget (all people together).")] = None,
    data: DataOption = BUNDLED,
    iterations: Annotated[int, typer.Option(help="Most NES steps.")] = 300,
    samples: Annotated[int, typer.Option(help="Antithetic pairs per step (2x queries per person per step).")] = 20,
    public_data: Annotated[Path | None, typer.Option(help="Photos of people NOT in the training set, as a prior "
                                                           "(default: a data-free DCT basis).")] = None,
    seed: Annotated[int, seed_option("Seed of the attack's sampling and the evaluator.")] = 0,
    baseline: BaselineOption = True,
    endpoint: EndpointOption = None,
    api_key: ApiKeyOption = None,
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty output folder.")] = False,
    spec: ImportSpec | None = None,
) -> None:
    """Score-based black-box inversion through a counted oracle with an output policy, or
    through a live mirisk gateway (--endpoint)."""
    attack = ScoreBlackBox(iterations=iterations, samples=samples)
    oracle_attack_job(attack, "black-box", model, spec, out, data, policy, budget, pixel_basis(public_data), seed,
                      force, endpoint, api_key, baseline)


@attack_app.command("labelonly")
@friendly_errors
@with_import_options
def attack_labelonly(
    model: Annotated[Path, typer.Option(help="Model folder written by `mirisk train`, or a model file (TorchScript, "
                                             ".pt2, ONNX, skops, safetensors).")],
    out: Annotated[Path, typer.Option(help="New folder for result.json and the reconstructions.")],
    policy: Annotated[str, typer.Option(help="The oracle's output policy; the attack reads only its top label.")] = "label",
    budget: Annotated[int | None, typer.Option(help="Total query budget (all people together).")] = None,
    data: DataOption = BUNDLED,
    iterations: Annotated[int, typer.Option(help="Most repulsion steps.")] = 100,
    public_data: Annotated[Path | None, typer.Option(help="Photos of people NOT in the training set, as a prior "
                                                           "(default: a data-free DCT basis).")] = None,
    seed: Annotated[int, seed_option("Seed of the attack's sampling and the evaluator.")] = 0,
    baseline: BaselineOption = True,
    endpoint: EndpointOption = None,
    api_key: ApiKeyOption = None,
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty output folder.")] = False,
    spec: ImportSpec | None = None,
) -> None:
    """Label-only inversion by boundary repulsion (after BREP-MI, Kahla et al. CVPR 2022),
    locally or through a live mirisk gateway (--endpoint)."""
    report = oracle_attack_job(
        BoundaryRepulsion(iterations=iterations), "label-only", model, spec, out, data, policy, budget,
        pixel_basis(public_data), seed, force, endpoint, api_key, baseline,
    )
    found = report.result.settings["start_found"]
    console.print(f"a starting point was found for {found} of {report.payload['n_targets']} people")


def pixel_basis(public_data: Path | None) -> Callable[[TargetModel], CodeSpace]:
    """The data-free DCT basis, or a PCA basis of the public photos (checked against the target)."""
    return lambda target: dct_basis(target.input_shape) if public_data is None else public_basis(public_data, target)


def oracle_attack_job(
    attack: ScoreBlackBox | BoundaryRepulsion, title: str, model: Path, spec: ImportSpec | None, out: Path, data: str,
    policy: str, budget: int | None, basis_for: Callable[[TargetModel], CodeSpace], seed: int, force: bool,
    endpoint: str | None, api_key: str | None, baseline: bool = True,
) -> FaceInversionReport:
    """Load, attack every person through an oracle (local, or the gateway at ``endpoint``)
    in the code space ``basis_for`` gives for the target, run the same attack on the
    label-permuted twin (locally, under the same policy), measure, write and summarise."""
    local_policy = parse_policy(policy) if endpoint is None else None  # a bad policy is named before any work
    out_dir = prepare_output_dir(out, force=force)
    dataset = load_faces(data)
    target = load_image_target(model, spec, dataset)
    target_split(target, dataset)
    oracle: QueryAccess
    if local_policy is not None:
        oracle = Oracle(target, local_policy, budget=budget)
    else:
        oracle = RemoteOracle(endpoint, api_key or "", budget=budget)
        oracle.check_serves(target.class_names, target.input_shape)
        console.print(f"attacking the gateway at {endpoint}: it answers this key under policy {oracle.policy.spec}, "
                      f"{'no budget' if oracle.remaining is None else f'{oracle.remaining:,} queries left'}",
                      highlight=False)
    served = oracle.policy.spec

    def access(model: TargetModel) -> QueryAccess:  # the twin is attacked locally, under the same policy
        return oracle if model is target else Oracle(model, parse_policy(served), budget=budget)

    report = run_and_measure(f"{title} ({served}) on {target.architecture}", target, dataset,
                             replace(attack, basis=basis_for(target)), access, seed, baseline)
    write_inversion_outputs(out_dir, report, target.class_names)
    console.print(summary_table([report.payload]))
    if report.payload["budget_limited"]:
        console.print(f"stopped by the query budget ({oracle.budget:,} queries) and kept its best so far")
    refusals = sorted({reason for reason in report.result.stop_reasons if reason.startswith("gateway-")})
    if refusals:
        console.print(f"the gateway stopped the attack ({', '.join(refusals)}) after {report.result.queries_used:,} "
                      f"queries; the results are its best so far")
    console.print(f"wrote {out_dir}/result.json, reconstructions.png, reconstructions.npz (owner-only)")
    return report


@attack_app.command("matrix")
@friendly_errors
@with_import_options
def attack_matrix(
    model: Annotated[Path, typer.Option(help="Model folder written by `mirisk train`, or a model file (TorchScript, "
                                             ".pt2, ONNX, skops, safetensors).")],
    out: Annotated[Path, typer.Option(help="New folder for matrix.json and matrix.png.")],
    policy: Annotated[list[str] | None, typer.Option(help="An output policy to judge (repeat the option); "
                                                          "default: the standard seven.")] = None,
    budget: Annotated[int | None, typer.Option(help="Query budget of each black-box attack (all people).")] = None,
    data: DataOption = BUNDLED,
    iterations: Annotated[int, typer.Option(help="Steps of the score and label-only attacks.")] = 100,
    seed: Annotated[int, seed_option("Seed of the attacks' sampling, the evaluator and the baseline.")] = 0,
    baseline: BaselineOption = True,
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty output folder.")] = False,
    spec: ImportSpec | None = None,
) -> None:
    """Judge output policies by white-box, score black-box and label-only attacks (each cell
    by the independent judge, held-out re-identification and the pixel evaluator, beside the
    same attack through the same policy on the label-permuted twin), with each policy's cost
    to legitimate users (accuracy, calibration error)."""
    out_dir = prepare_output_dir(out, force=force)
    dataset = load_faces(data)
    target = load_image_target(model, spec, dataset)
    target_split(target, dataset)
    policies = tuple(policy) if policy else DEFAULT_POLICIES
    runner = PolicyMatrix(
        basis=dct_basis(target.input_shape), blackbox=ScoreBlackBox(iterations=iterations),
        labelonly=BoundaryRepulsion(iterations=iterations), budget=budget,
    )
    with progress_bar(f"policy x attack matrix on {target.architecture}", len(policies)) as update:
        rows_done = iter(range(1, len(policies) + 1))
        matrix = runner.run(target, dataset, policies, on_cell=lambda _policy: update(next(rows_done)), seed=seed,
                            baseline=baseline)
    write_json(out_dir / "matrix.json", matrix)
    write_bytes(out_dir / "matrix.png", policy_matrix_heatmap(matrix))
    console.print(matrix_table(matrix))
    console.print(f"wrote {out_dir}/matrix.json and matrix.png (owner-only)")


def matrix_table(matrix: dict[str, Any]) -> Table:
    """Policies as rows: their cost, then per attack the judge's top-1 / held-out re-ID top-1 /
    the pixel evaluator's top-1, with the label-permuted twin's judge / re-ID below."""
    base = " (twin below)" if matrix.get("baseline") else ""
    table = Table(title=f"Output policies vs attacks on {matrix['model']['architecture']}: judge top-1 / "
                        f"re-ID top-1 / pixel top-1{base}; chance {matrix['chance_top1']:.1%}")
    for column in ("policy", "accuracy", "ECE", "white-box", "score black-box", "label-only", "queries/person"):
        table.add_column(column, justify="right")
    for row in matrix["rows"]:
        error = row["cost"]["calibration_error"]
        table.add_row(
            row["policy"], f"{row['cost']['accuracy']:.1%}", "-" if error is None else f"{error:.3f}",
            *(matrix_cell(row[key]) for key in ("white-box", "blackbox-scores", "labelonly")),
            f"{row['blackbox-scores']['queries_per_target']:,.0f} / {row['labelonly']['queries_per_target']:,.0f}",
        )
    return table


def matrix_cell(cell: dict[str, Any]) -> str:
    """'judge / re-ID / pixel', and the twin's 'judge / re-ID' on a second line when measured."""
    text = f"{cell['judge_top1']:.0%} / {cell['reid_top1']:.0%} / {cell['identification_top1']:.0%}"
    if cell.get("baseline_judge_top1") is None:
        return text
    return f"{text}\ntwin {cell['baseline_judge_top1']:.0%} / {cell['baseline_reid_top1']:.0%}"


def public_basis(folder: Path, target: TargetModel) -> ImageBasis:
    """A PCA prior from public photos, refusing any person the target was trained on."""
    public = load_image_folder(folder)
    overlap = set(public.class_names) & set(target.class_names)
    if overlap:
        raise MiriskError(f"--public-data must hold other people; {len(overlap)} are in the training set "
                          f"(e.g. {sorted(overlap)[0]})")
    if public.input_shape != tuple(target.input_shape):
        raise MiriskError(f"public photos are {public.input_shape}; the model expects {tuple(target.input_shape)}")
    return public_face_basis(public.images)


def run_and_measure(title: str, target: TargetModel, dataset: ImageDataset, attack: Attack,
                    access: Callable[[TargetModel], Any], seed: int, baseline: bool = True) -> FaceInversionReport:
    """:func:`~mirisk.pipelines.face_attack.attack_faces` with a progress bar for the attack
    and a line for each later stage."""
    with progress_bar(title, attack.iterations) as update:  # type: ignore[attr-defined]
        return attack_faces(target, dataset, attack, access, seed=seed, baseline=baseline, progress=update,
                            stage=console.print)


def summary_table(payloads: list[dict[str, Any]]) -> Table:
    """One row per attacked model: accuracy, identification, re-identification, SSIM, time."""
    first = payloads[0]
    access = first["threat_model"]["access"]
    title = {"miface": "MI-Face"}.get(first["attack"], first["attack"])
    table = Table(title=f"{title} ({access}): can the reconstruction be identified?")
    queried = "queries_used" in first
    columns = ("model", "test acc.", "judge top-1 [95% CI]", "baseline", "face rate", "re-ID top-1", "baseline ",
               "pixel eval. top-1", "disagree", "attack s")
    for column in columns + (("queries/person", "policy") if queried else ()):
        table.add_column(column, justify="right")
    for payload in payloads:
        metrics = payload["metrics"]
        judge, base, disagreement = metrics["independent"], metrics["baseline"], metrics["evaluator_disagreement"]
        low, high = judge["identification_top1_ci"]
        table.add_row(
            payload["model"]["architecture"],
            "-" if "test_accuracy" not in payload["model"] else f"{payload['model']['test_accuracy']:.1%}",
            f"{judge['identification_top1']:.1%} [{low:.0%}, {high:.0%}]",
            f"{base['independent']['identification_top1']:.1%}" if base["available"] else "n/a",
            f"{judge['face_rate']:.0%}",
            f"{metrics['reid_top1']:.1%}",
            f"{base['reid_top1']:.1%}" if base["available"] else "n/a",
            f"{metrics['identification_top1']:.1%}",
            f"{disagreement['judge_rejected']}/{disagreement['pixel_identified']}",
            f"{payload['seconds']:.1f}",
            *((f"{payload['queries_per_target']:,.0f}", payload["policy"]) if queried else ()),
        )
    chance1 = payloads[0]["metrics"]["chance_top1"]
    table.caption = (f"chance top-1 {chance1:.1%}. judge: dlib face recogniser vs held-out photos; baseline: the same "
                     "attack on a twin trained with permuted labels; re-ID: pixel correlation with held-out photos; "
                     "disagree: people the pixel evaluator names that the judge does not")
    return table


@demo_app.command("faces")
@friendly_errors
def demo_faces(
    out: Annotated[Path, typer.Option(help="New folder for the models and results.")] = Path("mirisk-demo"),
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty output folder.")] = False,
) -> None:
    """Train the three face-recogniser families on the bundled AT&T faces and invert each."""
    out_dir = prepare_output_dir(out, force=force)
    dataset = load_faces(None)
    console.print(f"AT&T faces: {len(dataset.images)} photos of {dataset.n_classes} people, 7 per person in training")
    payloads = []
    started = time.perf_counter()
    for architecture in FaceArchitecture:
        epochs = default_training(architecture.value).epochs
        with progress_bar(f"training {architecture.value}", epochs) as update:
            target = train_face_target(architecture.value, dataset, progress=update)
        model_dir = prepare_output_dir(out_dir / architecture.value, force=True)
        save_target(target, model_dir / "model", force=True)
        report = run_and_measure(f"MI-Face on {target.architecture}", target, dataset, DEFAULT_MIFACE, WhiteBoxAccess,
                                 seed=0)
        result_dir = prepare_output_dir(model_dir / "miface", force=True)
        write_inversion_outputs(result_dir, report, target.class_names)
        payloads.append(report.payload)
    console.print(summary_table(payloads))
    console.print(f"done in {time.perf_counter() - started:.0f} s; images and result.json files under {out_dir}/")
