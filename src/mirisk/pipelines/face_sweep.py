"""Privacy-utility-risk sweep for face recognisers: retrain under each defence recipe and
training-set size, then measure accuracy and how well the white-box and score black-box
inversions identify the people (Fredrikson et al., CCS 2015; DP-SGD, Abadi et al. 2016)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import Any

from mirisk.access.oracle import Oracle
from mirisk.access.policies import parse_policy
from mirisk.access.whitebox import WhiteBoxAccess
from mirisk.attacks.blackbox import ScoreBlackBox
from mirisk.attacks.contract import seeded
from mirisk.attacks.result import AttackResult
from mirisk.data.faces import load_faces
from mirisk.data.images import ImageDataset
from mirisk.defences import DPSettings, TrainingDefences
from mirisk.errors import MiriskError
from mirisk.execution.backends import Backend, LocalBackend
from mirisk.execution.tasks import portable_path
from mirisk.metrics.identification import chance
from mirisk.metrics.vulnerability import image_vulnerability
from mirisk.models.target import TargetModel
from mirisk.pipelines.faces import (
    attacked_people, configured_miface, default_training, face_gallery, measure_face_reconstructions,
    train_face_target,
)
from mirisk.runtime import keeps_caller_generators, prepare_torch

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
    data: str,
    architecture: str,
    recipes: list[Recipe],
    n_trains: tuple[int, ...] = (7,),
    blackbox_iterations: int = 100,
    miface_iterations: int = 1000,
    seed: int = 0,
    on_point: Callable[[int], None] | None = None,
    backend: Backend | None = None,
    people: int | None = None,
) -> list[dict[str, Any]]:
    """One point per recipe and training-set size on the faces at ``data`` (a folder or
    ``bundled:att_faces``): the model's accuracy and vulnerability factors, then
    identification top-1 (and re-identification) by each attack, of all people or a seeded
    sample of ``people``. Each point is one task of ``backend`` (default: this process)."""
    tasks = [{"data": portable_path(data), "architecture": architecture, "n_train": n_train, "label": recipe.label,
              "epsilon": recipe.epsilon, "defences": asdict(recipe.defences), "seed": seed,
              "blackbox_iterations": blackbox_iterations, "miface_iterations": miface_iterations, "people": people}
             for n_train in n_trains for recipe in recipes]
    done = iter(range(1, len(tasks) + 1))
    return (backend or LocalBackend()).map(
        "face-sweep-point", tasks, None if on_point is None else lambda _index, _point: on_point(next(done)))


@lru_cache(maxsize=4)
def _faces(data: str) -> ImageDataset:
    return load_faces(data)


def sweep_point(task: dict[str, Any]) -> dict[str, Any]:
    """One sweep point, from its task document (see :func:`face_sweep`)."""
    dataset = _faces(task["data"])
    settings = task["defences"]
    defences = TrainingDefences(**{**settings, "dp": DPSettings(**settings["dp"]) if settings["dp"] else None})
    seed = task["seed"]
    config = replace(default_training(task["architecture"], private=defences.dp is not None), seed=seed)
    target = train_face_target(task["architecture"], dataset, n_train=task["n_train"], split_seed=seed,
                               config=config, defences=defences)
    point: dict[str, Any] = {
        "defence": task["label"], "epsilon": task["epsilon"], "n_train": task["n_train"],
        "epsilon_spent": target.training.get("dp", {}).get("epsilon"),
        "train_accuracy": target.metrics["train_accuracy"], "test_accuracy": target.metrics["test_accuracy"],
        "vulnerability": image_vulnerability(target, dataset),
        "chance_top1": chance(dataset.n_classes, 1),
    }
    gallery = face_gallery(target, dataset, seed)  # one split and evaluator for both attacks
    for attack in SWEEP_ATTACKS:
        iterations = task["miface_iterations"] if attack == "white-box" else task["blackbox_iterations"]
        result = sweep_reconstructions(target, attack, iterations, seed, task.get("people"))
        identification = measure_face_reconstructions(target, dataset, result, seed=seed,
                                                      gallery=gallery).identification
        point[attack] = {**identification.headline(), "identification_top5": identification.pixel_top5}
    return point


@keeps_caller_generators
def sweep_reconstructions(model: TargetModel, attack: str, iterations: int, seed: int,
                          count: int | None) -> AttackResult:
    """One of :data:`SWEEP_ATTACKS` run on ``model``, for all its people (``count`` None) or a
    seeded sample of ``count``."""
    prepare_torch(seed)
    people = attacked_people(count, model.n_classes, seed)
    if attack == "white-box":
        return configured_miface(iterations=iterations).run(WhiteBoxAccess(model), people)
    oracle = Oracle(model, parse_policy("scores"))
    return ScoreBlackBox(iterations=iterations).run(oracle, people, generator=seeded(seed))
