"""The baseline every face attack must beat: the same attack, with the same settings, on a
twin of the target of the same family and recipe, trained on the same photos with the person
labels permuted by a seeded derangement, so that no label carries its person's identity. Its
reconstructions are scored exactly as the target's; success is what lies above it.

A reconstruction the judge names as person c from the twin's class c cannot come from the
twin's memory of c (it never saw c under that label): it measures what the attack, the
data and the judges give by themselves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from mirisk.attacks.result import AttackResult
from mirisk.data.images import ImageDataset
from mirisk.models.target import TargetModel
from mirisk.models.training import TrainingConfig
from mirisk.pipelines.faces import BaselineUnavailable, train_face_target

RECIPE_KEYS = ("epochs", "learning_rate", "batch_size", "weight_decay", "seed")
UNREPRODUCED_DEFENCES = ("dp", "dropout", "early_stopping", "label_smoothing")


def derangement(n: int, seed: int) -> np.ndarray:
    """A seeded permutation of ``range(n)`` with no fixed point (rejection sampling, ~e tries)."""
    rng = np.random.default_rng(seed)
    while True:
        permutation = rng.permutation(n)
        if not (permutation == np.arange(n)).any():
            return permutation


def twin_recipe(target: TargetModel) -> TrainingConfig | BaselineUnavailable:
    """The target's recorded training settings, or why they are not known."""
    if target.data.get("split") == "unknown":
        return BaselineUnavailable("imported model: its training photos and recipe are unknown, so no twin "
                                   "can be trained on them; verdicts compare with chance")
    defended = [key for key in UNREPRODUCED_DEFENCES if target.training.get(key)]
    if defended:
        return BaselineUnavailable(f"the model was trained with {', '.join(defended)}, which its twin does not "
                                   "reproduce yet; verdicts compare with chance")
    missing = [key for key in RECIPE_KEYS if key not in target.training]
    if missing:
        return BaselineUnavailable(f"the model's metadata lacks its training recipe ({', '.join(missing)})")
    return TrainingConfig(**{key: target.training[key] for key in RECIPE_KEYS})


_TWINS: dict[str, TargetModel] = {}


def label_permuted_twin(target: TargetModel, dataset: ImageDataset, seed: int) -> TargetModel | BaselineUnavailable:
    """The target's twin on permuted labels (trained once per process for a given target,
    data and seed). The twin keeps the target's split of photos and its class names."""
    recipe = twin_recipe(target)
    if isinstance(recipe, BaselineUnavailable):
        return recipe
    key = hashlib.blake2b(repr((target.architecture, target.training, target.data, dataset.fingerprint(), seed))
                          .encode(), digest_size=16).hexdigest()
    if key not in _TWINS:
        permutation = derangement(dataset.n_classes, seed)
        permuted = replace(dataset, labels=permutation[dataset.labels])
        twin = train_face_target(target.architecture, permuted, n_train=int(target.data["n_train_per_subject"]),
                                 split_seed=int(target.data["split_seed"]), config=recipe)
        twin.training["label_permutation_seed"] = seed
        _TWINS.clear()  # one twin is kept: audits and sweeps move from target to target
        _TWINS[key] = twin
    return _TWINS[key]


def run_baseline(target: TargetModel, dataset: ImageDataset, attack: Callable[[TargetModel], AttackResult],
                 seed: int) -> AttackResult | BaselineUnavailable:
    """``attack`` (the same one, same settings) run on the target's label-permuted twin."""
    twin = label_permuted_twin(target, dataset, seed)
    if isinstance(twin, BaselineUnavailable):
        return twin
    return attack(twin)
