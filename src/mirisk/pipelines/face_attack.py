"""One face attack end to end, as one library call: the attack on every person (or a sample)
through the access it is given, the same attack on the target's label-permuted twin (the
baseline every rate is read against), and every measurement of the reconstructions, the
independent judge first. The attack commands and the audit's image units call it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from mirisk.attacks.contract import Attack, Progress, seeded
from mirisk.attacks.result import AttackResult
from mirisk.data.images import ImageDataset
from mirisk.models.loading import target_split
from mirisk.models.target import TargetModel
from mirisk.pipelines.face_baseline import run_baseline
from mirisk.pipelines.faces import FaceGallery, FaceInversionReport, measure_face_reconstructions

Stage = Callable[[str], None]


def attack_faces(target: TargetModel, dataset: ImageDataset, attack: Attack, access: Callable[[TargetModel], Any], *,
                 people: torch.Tensor | None = None, seed: int = 0, baseline: bool = True,
                 progress: Progress | None = None, stage: Stage | None = None,
                 gallery: FaceGallery | None = None) -> FaceInversionReport:
    """``attack`` on ``people`` (None: every person) through ``access(target)`` (the
    weights, or an oracle with its policy and budget), the same attack through
    ``access(twin)`` on the label-permuted twin unless ``baseline`` is False, both with
    randomness seeded by ``seed``, then measured. ``progress(step)`` follows the attack on
    the target; ``stage(words)`` is told when the baseline and the measurements start;
    ``gallery`` is the shared split and evaluator of an audit (built here when None)."""
    target_split(target, dataset)  # refuse mismatched data before a long attack
    people = torch.arange(target.n_classes) if people is None else people

    def run(model: TargetModel, step: Progress | None = None) -> AttackResult:
        return attack.run(access(model), people, generator=seeded(seed), progress=step)

    result = run(target, progress)
    twin = None
    if baseline:
        if stage is not None:
            stage("baseline: the same attack on the label-permuted twin")
        twin = run_baseline(target, dataset, run, seed)
    if stage is not None:
        stage("measuring identification (independent judge, pixel evaluator, re-identification, SSIM)")
    return measure_face_reconstructions(target, dataset, result, seed=seed, baseline=twin, gallery=gallery)
