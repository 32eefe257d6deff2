"""Privacy-utility-risk sweep for face recognisers: retrain under each defence recipe and
training-set size, then measure accuracy and how well the white-box and score black-box
inversions identify the people (Fredrikson et al., CCS 2015; DP-SGD, Abadi et al. 2016)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from mirisk.access.oracle import Oracle
from mirisk.access.policies import parse_policy
from mirisk.access.whitebox import WhiteBoxAccess
from mirisk.attacks.basis import dct_basis
from mirisk.attacks.blackbox import ScoreBlackBox
from mirisk.data.images import ImageDataset
from mirisk.defences import DPSettings, TrainingDefences
from mirisk.errors import MiriskError
from mirisk.metrics.identification import chance
from mirisk.metrics.vulnerability import image_vulnerability
from mirisk.models.target import TargetModel
from mirisk.pipelines.faces import configured_miface, measure_face_reconstructions, train_face_target
from mirisk.runtime import prepare_torch

SWEEP_ATTACKS = ("white-box", "scores")


@dataclass(frozen=True)
class Recipe:
    """One defence setting of the sweep, with the label it is reported under."""

    label: str
    defences: TrainingDefences
    epsilon: float | None = None


def epsilon_recipes(epsilons: tuple[float | None, ...], delta: float = 1e-5) -> list[Recipe]:
    """None: the undefended model; a number: DP-SGD to that epsilon."""
    return [Recipe("no defence", TrainingDefences()) if epsilon is None
            else Recipe(f"DP ε={epsilon:g}", TrainingDefences(dp=DPSettings(epsilon, delta)), epsilon)
            for epsilon in epsilons]


RECIPE_KEYS = {
    "weight-decay": lambda value: TrainingDefences(weight_decay=value),
    "dropout": lambda value: TrainingDefences(dropout=value),
    "early-stopping": lambda value: TrainingDefences(early_stopping=int(value)),
    "label-smoothing": lambda value: TrainingDefences(label_smoothing=value),
}


def parse_recipes(text: str | None) -> list[Recipe]:
    """'weight-decay=0.01,dropout=0.5,label-smoothing=-0.05' -> one recipe per item."""
    recipes = []
    for item in (part.strip() for part in (text or "").split(",") if part.strip()):
        name, _, value = item.partition("=")
        if name not in RECIPE_KEYS:
            raise MiriskError(f"unknown defence {name!r}; choose from {', '.join(RECIPE_KEYS)} (as name=value)")
        try:
            number = float(value)
        except ValueError:
            raise MiriskError(f"defence {name} needs a number, as {name}=0.1; got {item!r}") from None
        if name == "early-stopping" and not number.is_integer():
            raise MiriskError(f"early-stopping takes a whole number of epochs, got {item!r}")
        recipes.append(Recipe(f"{name} {number:g}", RECIPE_KEYS[name](number)))
    return recipes


def face_sweep(
    dataset: ImageDataset,
    architecture: str,
    recipes: list[Recipe],
    n_trains: tuple[int, ...] = (7,),
    blackbox_iterations: int = 100,
    miface_iterations: int = 1000,
    seed: int = 0,
    on_point: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """One point per recipe and training-set size: the model's accuracy and vulnerability
    factors, then identification top-1 (and re-identification) by each attack."""
    points = []
    for n_train in n_trains:
        for recipe in recipes:
            target = train_face_target(architecture, dataset, n_train=n_train, split_seed=seed,
                                       defences=recipe.defences)
            point: dict[str, Any] = {
                "defence": recipe.label, "epsilon": recipe.epsilon, "n_train": n_train,
                "epsilon_spent": target.training.get("dp", {}).get("epsilon"),
                "train_accuracy": target.metrics["train_accuracy"], "test_accuracy": target.metrics["test_accuracy"],
                "vulnerability": image_vulnerability(target, dataset),
                "chance_top1": chance(dataset.n_classes, 1),
            }
            for attack in SWEEP_ATTACKS:
                iterations = miface_iterations if attack == "white-box" else blackbox_iterations
                metrics = _attack(target, dataset, attack, iterations, seed)
                point[attack] = {key: metrics[key] for key in ("identification_top1", "identification_top5", "reid_top1")}
            points.append(point)
            if on_point is not None:
                on_point(len(points))
    return points


def _attack(target: TargetModel, dataset: ImageDataset, attack: str, iterations: int, seed: int) -> dict[str, Any]:
    prepare_torch(seed)
    people = torch.arange(target.n_classes)
    if attack == "white-box":
        result = configured_miface(iterations=iterations).run(WhiteBoxAccess(target), people)
    else:
        oracle = Oracle(target, parse_policy("scores"))
        result = ScoreBlackBox(iterations=iterations).run(oracle, people, dct_basis(target.input_shape), seed=seed)
    return measure_face_reconstructions(target, dataset, result, seed=seed).metrics
