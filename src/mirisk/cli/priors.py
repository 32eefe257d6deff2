"""`mirisk train prior` and `mirisk attack generative`: a face prior learnt from public people,
and inversion in its latent space (white-box GMI, Zhang et al. CVPR 2020; scores or labels
through a counted oracle)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mirisk.access.whitebox import WhiteBoxAccess
from mirisk.artifacts import make_private_dir, prepare_output_dir, read_json
from mirisk.attacks.generative import IDENTITY_LOSSES, GenerativeInversion
from mirisk.cli.common import attack_app, console, friendly_errors, progress_bar, seed_option, train_app, with_import_options
from mirisk.attacks.basis import LatentBasis
from mirisk.attacks.blackbox import ScoreBlackBox
from mirisk.attacks.labelonly import BoundaryRepulsion
from mirisk.cli.faces import BaselineOption, oracle_attack_job, run_and_measure, summary_table
from mirisk.data.faces import BUNDLED
from mirisk.errors import MiriskError
from mirisk.data.faces import BUNDLED_PUBLIC, load_faces
from mirisk.models.imported import ImportSpec
from mirisk.models.loading import load_image_target
from mirisk.models.target import TargetModel
from mirisk.models.loading import target_split
from mirisk.pipelines.faces import write_inversion_outputs
from mirisk.priors.gan import PriorShape
from mirisk.priors.store import BUNDLED_PRIOR, check_prior_fits, load_prior, save_prior
from mirisk.priors.training import PriorTraining, prior_from_checkpoint, train_prior

GENERATIVE_ACCESS = ("white-box", "scores", "label-only")


@train_app.command("prior")
@friendly_errors
def train_prior_command(
    out: Annotated[Path, typer.Option(help="Folder for the prior; checkpoints go there too, so rerunning resumes.")],
    data: Annotated[str, typer.Option(help=f"Photos of public people (one sub-folder per person) or {BUNDLED_PUBLIC}; "
                                           "never the people a model you will audit was trained on.")] = BUNDLED_PUBLIC,
    steps: Annotated[int, typer.Option(help="Training steps (batches of 64); rerun with more to extend a run, or with "
                                            "the steps it has to end it there.")] = PriorTraining().steps,
    seed: Annotated[int, seed_option("Seed of the weights, batches and augmentation.")] = 0,
) -> None:
    """Train a face generator (and its discriminator) on public faces with DiffAugment (Zhao
    et al., NeurIPS 2020), for the generative attacks. Resumable; about 0.3 s a step on one core."""
    settings = PriorTraining(steps=steps, seed=seed)
    public = load_faces(data)
    make_private_dir(out)
    shape = PriorShape(*public.input_shape)
    with progress_bar(f"training a prior on {public.n_classes} public people", steps) as update:
        def log(line: str) -> None:
            if line.startswith("step "):
                update(int(line.split()[1]))
        train_prior(public.images, shape, settings, out, log=log)
    save_prior(prior_from_checkpoint(out, public), out, force=True)
    console.print(f"wrote {out}/prior.safetensors and prior.json (learnt from {public.n_classes} people)")


@attack_app.command("generative")
@friendly_errors
@with_import_options
def attack_generative(
    model: Annotated[Path, typer.Option(help="Model folder written by `mirisk train`, or a model file (white-box: "
                                             "TorchScript / .pt2; black-box: any importable format).")],
    out: Annotated[Path, typer.Option(help="New folder for result.json and the reconstructions.")],
    access: Annotated[str, typer.Option(help="white-box (GMI), scores (NES in the latent space) or label-only "
                                             "(BREP-MI in the latent space).")] = "white-box",
    data: Annotated[str | None, typer.Option(help="The model's people (default: the data the model records).")] = None,
    prior: Annotated[str, typer.Option(help=f"A prior folder from `mirisk train prior`, or {BUNDLED_PRIOR}.")]
    = BUNDLED_PRIOR,
    iterations: Annotated[int | None, typer.Option(help="Steps (default: the attack's own: white-box "
                                                        f"{GenerativeInversion().iterations}, scores "
                                                        f"{ScoreBlackBox().iterations}, label-only "
                                                        f"{BoundaryRepulsion().iterations}).")] = None,
    starts: Annotated[int, typer.Option(help="White-box: latent starts per person (one batch).")]
    = GenerativeInversion().starts,
    identity: Annotated[str, typer.Option(help=f"White-box identity loss: {', '.join(IDENTITY_LOSSES)}.")]
    = GenerativeInversion().identity,
    feature_steps: Annotated[int, typer.Option(help="White-box: steps in the generator's first feature map after "
                                                    "the latent steps (IF-GMI, Qiu et al. ECCV 2024).")]
    = GenerativeInversion().feature_steps,
    feature_radius: Annotated[float, typer.Option(help="White-box: how far each feature may move, in units of the "
                                                       "map's mean magnitude.")] = GenerativeInversion().feature_radius,
    policy: Annotated[str | None, typer.Option(help="Black-box: the oracle's output policy (default: scores, or "
                                                    "label for label-only).")] = None,
    budget: Annotated[int | None, typer.Option(help="Black-box: total query budget (all people together).")] = None,
    seed: Annotated[int, seed_option("Seed of the starts, the evaluator and the baseline.")] = 0,
    baseline: BaselineOption = True,
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty output folder.")] = False,
    spec: ImportSpec | None = None,
) -> None:
    """Inversion in the latent space of a prior learnt from public people: white-box GMI (Zhang
    et al. CVPR 2020; LOMMA's logit loss, Nguyen et al. CVPR 2023), or through a counted
    oracle by NES on the scores or by boundary repulsion on labels (BREP-MI, Kahla et al.
    CVPR 2022)."""
    if access not in GENERATIVE_ACCESS:
        raise MiriskError(f"--access must be one of {', '.join(GENERATIVE_ACCESS)}, got {access!r}")
    if access == "white-box" and (policy is not None or budget is not None):
        raise MiriskError("--policy and --budget apply to the black-box accesses (scores, label-only), not white-box")
    if access != "white-box" and feature_steps:
        raise MiriskError("--feature-steps applies to the white-box attack only")
    metadata = model / "target.json"
    recorded = read_json(metadata).get("data", {}).get("source") if data is None and metadata.is_file() else None
    source = data if data is not None else recorded
    face_prior = load_prior(prior)
    if access != "white-box":
        attack = (ScoreBlackBox(iterations=_or_default(iterations, ScoreBlackBox().iterations)) if access == "scores"
                  else BoundaryRepulsion(iterations=_or_default(iterations, BoundaryRepulsion().iterations),
                                         init_scale=1.0))

        def latent_space(target: TargetModel) -> LatentBasis:
            check_prior_fits(face_prior, target)
            return LatentBasis(face_prior)

        oracle_attack_job(attack, f"generative {access}", model, spec, out, source or BUNDLED, policy or (
            "scores" if access == "scores" else "label"), budget, latent_space, seed, force, None, None, baseline)
        return
    out_dir = prepare_output_dir(out, force=force)
    dataset = load_faces(source)
    target = load_image_target(model, spec, dataset)
    target_split(target, dataset)
    check_prior_fits(face_prior, target)
    attack = GenerativeInversion(iterations=_or_default(iterations, GenerativeInversion().iterations), starts=starts,
                                 identity=identity, feature_steps=feature_steps, feature_radius=feature_radius,
                                 prior=face_prior)
    report = run_and_measure(f"generative inversion of {target.architecture}", target, dataset, attack,
                             WhiteBoxAccess, seed, baseline)
    write_inversion_outputs(out_dir, report, target.class_names)
    console.print(summary_table([report.payload]))
    console.print(f"wrote {out_dir}/result.json, reconstructions.png, lineup.png, reconstructions.npz (owner-only)")


def _or_default(value: int | None, default: int) -> int:
    """``value`` as given (0 included, so that the attack refuses it), or ``default`` when not given."""
    return default if value is None else value
