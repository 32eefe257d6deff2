"""Privacy-utility-risk sweep for face recognisers: retrain under each defence recipe and
training-set size, then measure accuracy and how well a white-box and a score black-box
inversion identify the people: MI-Face and the DCT score attack (Fredrikson et al., CCS
2015), or their latent-space versions in a face prior (GMI, Zhang et al., CVPR 2020), the
audit's strongest of each (DP-SGD, Abadi et al. 2016)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import Any

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
    attacked_people, default_training, face_gallery, measure_face_reconstructions, train_face_target,
)
from mirisk.pipelines.face_attacks import LATENT_ATTACKS, SCORE_ATTACKS, WHITE_BOX_ATTACKS, build_face_attack, sweep_access
from mirisk.priors.store import FacePrior, load_prior
from mirisk.runtime import keeps_caller_generators, prepare_torch

SWEEP_ATTACKS = ("white-box", "scores")  # the access levels each point is measured at


@dataclass(frozen=True)
class SweepAttack:
    """The attack a sweep runs on every retrain at one of :data:`SWEEP_ATTACKS`: its name
    (see :mod:`mirisk.pipelines.face_attacks`), steps, face prior (latent attacks) and
    MI-Face start; ``unit`` names it in the results (the audit unit it repeats)."""

    access: str
    unit: str
    attack: str
    iterations: int
    prior: str | None = None
    start: float | None = None

    def __post_init__(self) -> None:
        allowed = WHITE_BOX_ATTACKS if self.access == "white-box" else SCORE_ATTACKS
        if self.access not in SWEEP_ATTACKS or self.attack not in allowed:
            raise MiriskError(f"a sweep attack at {self.access!r} is one of {', '.join(allowed)}, got {self.attack!r}")
        if (self.prior is None) == (self.attack in LATENT_ATTACKS):
            raise MiriskError(f"the {self.attack} attack {'needs a' if self.prior is None else 'takes no'} face prior")


def classic_sweep_attacks(miface_iterations: int = 1000, blackbox_iterations: int = 100) -> tuple[SweepAttack, ...]:
    """MI-Face with the weights and the DCT score black-box attack, the sweep's pixel-space pair."""
    return (SweepAttack("white-box", "white-box-miface", "miface", miface_iterations),
            SweepAttack("scores", "scores-blackbox", "blackbox", blackbox_iterations))


def generative_sweep_attacks(prior: str, generative_iterations: int = 100,
                             scores_iterations: int = 50) -> tuple[SweepAttack, ...]:
    """GMI with the weights and NES through the scores, both in the latent space of ``prior``."""
    return (SweepAttack("white-box", "white-box-generative", "generative", generative_iterations, prior),
            SweepAttack("scores", "scores-generative", "generative-scores", scores_iterations, prior))


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
    attacks: tuple[SweepAttack, ...] | None = None,
    seed: int = 0,
    on_point: Callable[[int], None] | None = None,
    backend: Backend | None = None,
    people: int | None = None,
) -> list[dict[str, Any]]:
    """One point per recipe and training-set size on the faces at ``data`` (a folder or
    ``bundled:att_faces``): the model's accuracy and vulnerability factors, then
    identification top-1 (and re-identification) by each of ``attacks`` (default:
    :func:`classic_sweep_attacks`), one per access level, of all people or a seeded sample
    of ``people``. Each point is one task of ``backend`` (default: this process)."""
    attacks = attacks or classic_sweep_attacks()
    if sorted(attack.access for attack in attacks) != sorted(SWEEP_ATTACKS):
        raise MiriskError(f"a sweep runs one attack at each of {', '.join(SWEEP_ATTACKS)}")
    tasks = [{"data": portable_path(data), "architecture": architecture, "n_train": n_train, "label": recipe.label,
              "epsilon": recipe.epsilon, "defences": asdict(recipe.defences), "seed": seed,
              "attacks": [asdict(attack) for attack in attacks], "people": people}
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
    for attack in (SweepAttack(**document) for document in task["attacks"]):
        result = sweep_reconstructions(target, attack, seed, task.get("people"))
        identification = measure_face_reconstructions(target, dataset, result, seed=seed,
                                                      gallery=gallery).identification
        point[attack.access] = {**identification.headline(), "identification_top5": identification.pixel_top5,
                                "attack": attack.unit}
    return point


@lru_cache(maxsize=2)
def _prior(source: str) -> FacePrior:
    return load_prior(source)


@keeps_caller_generators
def sweep_reconstructions(model: TargetModel, attack: SweepAttack, seed: int, count: int | None) -> AttackResult:
    """``attack`` run on ``model``, for all its people (``count`` None) or a seeded sample of
    ``count``."""
    prepare_torch(seed)
    people = attacked_people(count, model.n_classes, seed)
    prior = None if attack.prior is None else _prior(attack.prior)
    inversion = build_face_attack(attack.attack, attack.iterations, prior, attack.start)
    return inversion.run(sweep_access(attack.attack)(model), people, generator=seeded(seed))
