"""Defence sweeps: retrain a face recogniser under each defence and training-set size."""

from __future__ import annotations

from dataclasses import asdict
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mirisk.artifacts import prepare_output_dir, write_bytes, write_json
from mirisk.cli.common import (
    AddressOption, BackendName, BackendOption, CpusOption, console, friendly_errors, parse_epsilons,
    parse_numbers, progress_bar, seed_option, sweep_app,
)
from mirisk.cli.faces import DataOption, FaceArchitecture
from mirisk.data.faces import BUNDLED, load_faces
from mirisk.data.images import ImageDataset
from mirisk.errors import MiriskError
from mirisk.execution.backends import make_backend
from mirisk.figures import defence_sweep_plot
from mirisk.pipelines.face_sweep import (
    SWEEP_ATTACKS, SweepAttack, classic_sweep_attacks, epsilon_recipes, face_sweep, generative_sweep_attacks,
    parse_recipes,
)
from mirisk.priors.store import BUNDLED_PRIOR, check_prior_fits_faces, load_prior
from mirisk.runtime import versions


class SweepFamily(str, Enum):
    auto = "auto"
    pixel = "pixel"
    generative = "generative"


def chosen_attacks(family: SweepFamily, prior: str, dataset: ImageDataset, miface_iterations: int,
                   blackbox_iterations: int, generative_iterations: int,
                   generative_scores_iterations: int) -> tuple[tuple[SweepAttack, ...], str]:
    """The sweep's attacks and why: in the latent space of ``prior`` when it fits the
    photos (``auto`` and ``generative``; ``generative`` refuses a prior that does not fit),
    MI-Face and the DCT score attack otherwise. A prior that cannot be read is refused."""
    pixel = classic_sweep_attacks(miface_iterations, blackbox_iterations)
    if family is SweepFamily.pixel:
        return pixel, "MI-Face and the DCT score attack (--attacks pixel)"
    face_prior = load_prior(prior)
    try:
        check_prior_fits_faces(face_prior, dataset.input_shape, dataset.class_names)
    except MiriskError as error:
        if family is SweepFamily.generative:
            raise
        return pixel, f"MI-Face and the DCT score attack: the face prior {prior} does not fit ({error})"
    return (generative_sweep_attacks(prior, generative_iterations, generative_scores_iterations),
            f"GMI and NES in the latent space of the face prior {prior}")


@sweep_app.command("faces")
@friendly_errors
def sweep_faces(
    out: Annotated[Path, typer.Option(help="New folder for sweep.json and sweep.png.")],
    epsilons: Annotated[str, typer.Option(help="DP-SGD epsilons, 'inf' for the undefended model.")] = "inf,50,8,3,1",
    n_train: Annotated[str, typer.Option(help="Training photos per person, comma-separated.")] = "7",
    defences: Annotated[str | None, typer.Option(help="Other defences, each one point: weight-decay=V, dropout=V, "
                                                      "early-stopping=EPOCHS, label-smoothing=V (comma-separated).")] = None,
    model: Annotated[FaceArchitecture, typer.Option(help="Model family.")] = FaceArchitecture.softmax,
    data: DataOption = BUNDLED,
    attacks: Annotated[SweepFamily, typer.Option(help="The attacks run on each retrain: in a face prior's latent "
                                                      "space (generative), in pixel space (pixel), or the latent "
                                                      "ones wherever the prior fits the photos (auto).")] = SweepFamily.auto,
    prior: Annotated[str, typer.Option(help=f"A prior folder from `mirisk train prior`, or {BUNDLED_PRIOR}; learnt "
                                            "from people who are not in the data.")] = BUNDLED_PRIOR,
    blackbox_iterations: Annotated[int, typer.Option(help="NES steps of the pixel-space score attack.")] = 100,
    miface_iterations: Annotated[int, typer.Option(help="Gradient steps of the white-box MI-Face attack.")] = 1000,
    generative_iterations: Annotated[int, typer.Option(help="Adam steps of the white-box latent attack (GMI).")] = 100,
    generative_scores_iterations: Annotated[int, typer.Option(help="NES steps of the latent score attack (40 "
                                                                   "queries a person each).")] = 50,
    seed: Annotated[int, seed_option("Seed of the split, training and attacks.")] = 0,
    people: Annotated[int | None, typer.Option(help="Attack a seeded sample of this many people "
                                                    "(default: all of them).")] = None,
    backend: BackendOption = BackendName.local,
    address: AddressOption = None,
    cpus_per_task: CpusOption = None,
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty output folder.")] = False,
) -> None:
    """Privacy-utility-risk sweep: accuracy vs white-box and score black-box identification
    per defence; each point is one task (locally, or on a Ray cluster with --backend ray)."""
    for name, value in (("--blackbox-iterations", blackbox_iterations), ("--miface-iterations", miface_iterations),
                        ("--generative-iterations", generative_iterations),
                        ("--generative-scores-iterations", generative_scores_iterations)):
        if value < 1:
            raise MiriskError(f"{name} must be at least 1, got {value}")
    recipes = epsilon_recipes(parse_epsilons(epsilons)) + parse_recipes(defences)
    numbers = parse_numbers(n_train, "--n-train") or ()
    if not numbers or any(number < 1 or not number.is_integer() for number in numbers):
        raise MiriskError(f"--n-train needs whole numbers of photos per person, got {n_train!r}")
    sizes = tuple(int(number) for number in numbers)
    dataset = load_faces(data)
    if people is not None and not 1 <= people <= dataset.n_classes:
        raise MiriskError(f"--people must be between 1 and the data's {dataset.n_classes} people, got {people}")
    sweep_attacks, why = chosen_attacks(attacks, prior, dataset, miface_iterations, blackbox_iterations,
                                        generative_iterations, generative_scores_iterations)
    out_dir = prepare_output_dir(out, force=force)
    runner = make_backend(backend.value, address, cpus_per_task)
    console.print(f"attacks on each retrain: {why}")
    with progress_bar(f"sweeping {len(recipes) * len(sizes)} points", len(recipes) * len(sizes)) as update:
        points = face_sweep(dataset.source, model.value, recipes, sizes, sweep_attacks, seed=seed, on_point=update,
                            backend=runner, people=people)
    settings = {"model": model.value, "data": dataset.source, "n_train": list(sizes), "seed": seed, "people": people,
                "attacks": [asdict(attack) for attack in sweep_attacks], "attacks_why": why, "backend": runner.name,
                "cpus_per_task": runner.cpus_per_task, "versions": versions()}
    write_json(out_dir / "sweep.json", {"settings": settings, "points": points})
    write_bytes(out_dir / "sweep.png", defence_sweep_plot(points, SWEEP_ATTACKS, f"{model.value} on {dataset.source}"))
    console.print(sweep_table(points))
    console.print(f"wrote {out_dir}/sweep.json and sweep.png (owner-only)")


def sweep_table(points: list[dict]) -> Table:
    table = Table(title="defence sweep: identification top-1 (chance "
                        f"{points[0]['chance_top1']:.1%}) and accuracy")
    attacks = [f"{access} ({points[0][access]['attack']})" for access in SWEEP_ATTACKS]
    for column in ("defence", "photos/person", "ε spent", "train acc.", "test acc.", *attacks):
        table.add_column(column, justify="left" if column == "defence" else "right")
    for point in points:
        spent = "" if point["epsilon_spent"] is None else f"{point['epsilon_spent']:.2f}"
        table.add_row(point["defence"], str(point["n_train"]), spent, f"{point['train_accuracy']:.0%}",
                      f"{point['test_accuracy']:.0%}",
                      *(f"{point[attack]['identification_top1']:.0%}" for attack in SWEEP_ATTACKS))
    return table
