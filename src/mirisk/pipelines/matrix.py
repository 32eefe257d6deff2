"""The policy x attack matrix: each output policy judged by the attacks that go through the
same door a real attacker would use, beside what the policy costs legitimate users."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from mirisk.access.oracle import Oracle
from mirisk.access.policies import parse_policy
from mirisk.access.whitebox import WhiteBoxAccess
from mirisk.attacks.basis import ImageBasis
from mirisk.attacks.blackbox import ScoreBlackBox
from mirisk.attacks.contract import seeded
from mirisk.attacks.labelonly import BoundaryRepulsion
from mirisk.attacks.miface import MIFace
from mirisk.attacks.result import AttackResult
from mirisk.data.images import ImageDataset
from mirisk.models.target import TargetModel
from mirisk.models.loading import target_split
from mirisk.pipelines.face_baseline import run_baseline
from mirisk.pipelines.faces import (
    DEFAULT_MIFACE, BaselineUnavailable, measure_face_reconstructions,
)

DEFAULT_POLICIES = ("scores", "topk:3", "round:2", "round:1", "noise:laplace:0.05", "reverse-sigmoid:0.5,0.1", "label")


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """ECE (Guo, Pleiss, Sun & Weinberger, ICML 2017): the gap between confidence and
    accuracy, averaged over equal-width confidence bins weighted by their share."""
    edges = np.minimum((confidence * bins).astype(int), bins - 1)
    counts = np.bincount(edges, minlength=bins)
    gap = np.abs(np.bincount(edges, confidence, bins) - np.bincount(edges, correct.astype(float), bins))
    return float(gap.sum() / max(counts.sum(), 1))


def policy_cost(target: TargetModel, dataset: ImageDataset, policy_spec: str) -> dict[str, float | None]:
    """What a policy costs a legitimate user on held-out photos: accuracy of its top answer,
    and the calibration error of its top score (None where it reveals no score)."""
    held_out = dataset.subset(target_split(target, dataset).held_out)
    oracle = Oracle(target, parse_policy(policy_spec))
    outputs = torch.cat([oracle.query(chunk) for chunk in torch.as_tensor(held_out.images).split(256)])
    correct = outputs.argmax(1).numpy() == held_out.labels
    reveals_scores = oracle.policy.access.value != "label-only"
    return {
        "accuracy": float(correct.mean()),
        "calibration_error": expected_calibration_error(outputs.max(1).values.numpy(), correct) if reveals_scores else None,
    }


def _cell(target: TargetModel, dataset: ImageDataset, result: AttackResult, seed: int,
          baseline: AttackResult | BaselineUnavailable | None) -> dict[str, Any]:
    identification = measure_face_reconstructions(target, dataset, result, seed=seed, baseline=baseline).identification
    twin = identification.baseline
    return {
        **identification.headline(),
        "baseline_judge_top1": twin.judge_top1 if twin is not None and twin.available else None,
        "baseline_reid_top1": twin.reid_top1 if twin is not None and twin.available else None,
        "ssim_mean": identification.ssim_mean,
        "queries_per_target": None if result.queries_used is None else result.queries_used / len(result.target_labels),
        "seconds": result.seconds,
    }


@dataclass
class PolicyMatrix:
    """Attacks and settings of one matrix run."""

    basis: ImageBasis
    blackbox: ScoreBlackBox = field(default_factory=ScoreBlackBox)
    labelonly: BoundaryRepulsion = field(default_factory=BoundaryRepulsion)
    miface: MIFace = DEFAULT_MIFACE
    budget: int | None = None

    def run(
        self,
        target: TargetModel,
        dataset: ImageDataset,
        policies: Sequence[str] = DEFAULT_POLICIES,
        people: torch.Tensor | None = None,
        on_cell: Callable[[str], None] | None = None,
        seed: int = 0,
        baseline: bool = False,
    ) -> dict[str, Any]:
        """One row per policy. White-box MI-Face never passes through an output policy, so its
        cell is measured once and repeated: output restriction does not touch that threat.
        With ``baseline``, every attack also runs, through the same policy, on the target's
        label-permuted twin (seeded by ``seed``), and each cell carries the twin's numbers."""
        parsed = [parse_policy(spec) for spec in policies]  # fail on a bad spec before any work
        people = torch.arange(target.n_classes) if people is None else people
        blackbox, labelonly = replace(self.blackbox, basis=self.basis), replace(self.labelonly, basis=self.basis)

        def measured(attack: Callable[[TargetModel], AttackResult]) -> dict[str, Any]:
            twin = run_baseline(target, dataset, attack, seed) if baseline else None
            return _cell(target, dataset, attack(target), seed, twin)

        white_box = measured(lambda model: self.miface.run(WhiteBoxAccess(model), people))
        rows = []
        for policy in parsed:
            rows.append({
                "policy": policy.spec,
                "reveals": policy.access.value,
                "cost": policy_cost(target, dataset, policy.spec),
                "white-box": white_box,
                "blackbox-scores": measured(lambda model: blackbox.run(
                    Oracle(model, policy, self.budget), people, generator=seeded(seed))),
                "labelonly": measured(lambda model: labelonly.run(
                    Oracle(model, policy, self.budget), people, generator=seeded(seed))),
            })
            if on_cell is not None:
                on_cell(policy.spec)
        return {
            "model": {"architecture": target.architecture, **target.metrics},
            "n_targets": len(people),
            "chance_top1": 1 / target.n_classes,
            "budget": self.budget,
            "seed": seed,
            "baseline": "label-permuted twin" if baseline else None,
            "settings": {"blackbox": repr(self.blackbox), "labelonly": repr(self.labelonly),
                         "miface": repr(self.miface), "basis": self.basis.name},
            "rows": rows,
        }
