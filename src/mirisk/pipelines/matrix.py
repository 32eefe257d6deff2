"""The policy x attack matrix: each output policy judged by the attacks that go through the
same door a real attacker would use, beside what the policy costs legitimate users."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mirisk.access.oracle import Oracle
from mirisk.access.policies import parse_policy
from mirisk.access.whitebox import WhiteBoxAccess
from mirisk.attacks.basis import ImageBasis
from mirisk.attacks.blackbox import ScoreBlackBox
from mirisk.attacks.labelonly import BoundaryRepulsion
from mirisk.attacks.miface import MIFace
from mirisk.attacks.result import AttackResult
from mirisk.data.images import ImageDataset
from mirisk.models.target import TargetModel
from mirisk.models.loading import target_split
from mirisk.pipelines.faces import DEFAULT_MIFACE, headline_identification, measure_face_reconstructions

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


def _cell(target: TargetModel, dataset: ImageDataset, result: AttackResult) -> dict[str, Any]:
    metrics = measure_face_reconstructions(target, dataset, result).metrics
    return {
        **headline_identification(metrics),
        "ssim_mean": metrics["ssim_mean"],
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
    ) -> dict[str, Any]:
        """One row per policy. White-box MI-Face never passes through an output policy, so its
        cell is measured once and repeated: output restriction does not touch that threat."""
        parsed = [parse_policy(spec) for spec in policies]  # fail on a bad spec before any work
        people = torch.arange(target.n_classes) if people is None else people
        white_box = _cell(target, dataset, self.miface.run(WhiteBoxAccess(target), people))
        rows = []
        for policy in parsed:
            blackbox = self.blackbox.run(Oracle(target, policy, self.budget), people, self.basis)
            labelonly = self.labelonly.run(Oracle(target, policy, self.budget), people, self.basis)
            rows.append({
                "policy": policy.spec,
                "reveals": policy.access.value,
                "cost": policy_cost(target, dataset, policy.spec),
                "white-box": white_box,
                "blackbox-scores": _cell(target, dataset, blackbox),
                "labelonly": _cell(target, dataset, labelonly),
            })
            if on_cell is not None:
                on_cell(policy.spec)
        return {
            "model": {"architecture": target.architecture, **target.metrics},
            "n_targets": len(people),
            "chance_top1": 1 / target.n_classes,
            "budget": self.budget,
            "settings": {"blackbox": repr(self.blackbox), "labelonly": repr(self.labelonly),
                         "miface": repr(self.miface), "basis": self.basis.name},
            "rows": rows,
        }
