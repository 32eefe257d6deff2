"""Label-only model inversion by boundary repulsion.

After BREP-MI: Kahla, Chen, Just & Jia, "Label-Only Model Inversion Attacks via
Boundary Repulsion", CVPR 2022. As in the paper, it can search the latent space of a face
generator learnt from other people (``LatentBasis``); or the same image basis as the score
attack (low DCT frequencies, or principal components of public faces of other people),
where no generator is needed.

1. Start: random codes are queried until one is labelled as the target person.
2. Repulsion: points on a sphere of radius R around the code are queried; the code moves
   away from the points labelled as someone else, and only to a point still labelled as
   the target. When every point on the sphere keeps the target label, R grows: the code
   is moving deeper into the target's region, towards what the model holds most typical.

Threat model: label-only. The attacker sees only the predicted class of each image it
sends, knows the target person's label, and spends queries from the oracle's budget.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from mirisk.access.oracle import OracleRefused, QueryAccess
from mirisk.attacks.basis import CodeSpace, basis_for
from mirisk.attacks.contract import Progress, attack_generator, settings_of
from mirisk.attacks.result import AttackResult, as_target_labels
from mirisk.runtime import prepare_torch
from mirisk.threats import ThreatModel
from mirisk.validation import check_number, check_whole


@dataclass(frozen=True)
class BoundaryRepulsion:
    """Batched boundary repulsion in ``basis`` (None: the low DCT frequencies of the model's
    input): ``points`` sphere queries per target per step."""

    name = "labelonly-boundary-repulsion"
    iterations: int = 200
    points: int = 16
    radius: float = 2.0
    radius_growth: float = 1.3
    step_size: float = 0.5
    init_rounds: int = 50
    init_batch: int = 400
    init_scale: float = 3.0
    basis: CodeSpace | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("iterations", "points", "init_rounds", "init_batch"):
            check_whole(f"boundary repulsion's {name}", getattr(self, name))
        for name in ("radius", "radius_growth", "step_size", "init_scale"):
            check_number(f"boundary repulsion's {name}", getattr(self, name), 0, low_open=True)

    def _labels(self, oracle: QueryAccess, basis: CodeSpace, codes: torch.Tensor) -> torch.Tensor:
        return oracle.query(basis.decode(codes, oracle.input_shape, oracle.value_range)).argmax(dim=1)

    def run(self, oracle: QueryAccess, target_labels: Sequence[int] | torch.Tensor, *,
            generator: torch.Generator | None = None, progress: Progress | None = None) -> AttackResult:
        """Reconstruct one image per label from top labels alone; stops cleanly at the budget."""
        prepare_torch()
        labels = as_target_labels(target_labels, oracle.n_classes)
        generator, basis = attack_generator(generator), basis_for(self.basis, oracle.input_shape)
        started, queries_at_start = time.perf_counter(), oracle.queries_used
        targets, dimensions = len(labels), basis.dimensions
        code = torch.zeros(targets, dimensions)
        found = torch.zeros(targets, dtype=torch.bool)
        stop = "max-iterations"

        # 1. Random search for a start inside each target's region (shared samples).
        for _ in range(self.init_rounds):
            if found.all():
                break
            if oracle.remaining is not None and oracle.remaining < self.init_batch:
                stop = "budget"
                break
            samples = self.init_scale * torch.randn(self.init_batch, dimensions, generator=generator)
            try:
                predicted = self._labels(oracle, basis, samples)
            except OracleRefused as refused:
                stop = refused.reason
                break
            hits = (predicted[None, :] == labels[:, None]) & ~found[:, None]
            first = hits.float().argmax(dim=1)
            newly = hits.any(dim=1)
            code[newly] = samples[first[newly]]
            found |= newly

        # 2. Repulsion from the boundary, for the targets that were found.
        radius = torch.full((targets,), self.radius)
        steps_taken = 0
        per_step = targets * (self.points + 1)
        for step in range(self.iterations if stop == "max-iterations" else 0):
            if oracle.remaining is not None and oracle.remaining < per_step:
                stop = "budget"
                break
            directions = torch.randn(targets, self.points, dimensions, generator=generator)
            directions = directions / directions.norm(dim=2, keepdim=True)
            sphere = code[:, None, :] + radius[:, None, None] * directions
            try:
                outside = (self._labels(oracle, basis, sphere.reshape(-1, dimensions)).view(targets, self.points)
                           != labels[:, None]).float()
                push = -(outside[..., None] * directions).mean(dim=1)
                norm = push.norm(dim=1, keepdim=True)
                candidate = torch.where(norm > 0, code + self.step_size * radius[:, None] * push / norm.clamp_min(1e-12),
                                        code)
                still_inside = self._labels(oracle, basis, candidate) == labels
            except OracleRefused as refused:
                stop = refused.reason
                break
            accept = found & still_inside & (norm[:, 0] > 0)
            code = torch.where(accept[:, None], candidate, code)
            radius = torch.where(outside.sum(1) == 0, radius * self.radius_growth, radius)
            steps_taken = step + 1
            if progress is not None:
                progress(steps_taken)

        reasons = [stop if hit else "no-start-found" for hit in found.tolist()]
        return AttackResult(
            attack=self.name,
            threat_model=ThreatModel(
                access=oracle.policy.access,
                knowledge=("the predicted label of each query", "the target person's label", f"image basis: {basis.name}"),
                query_budget=oracle.budget,
            ),
            reconstructions=basis.decode(code, oracle.input_shape, oracle.value_range),
            target_labels=labels,
            final_cost=(~found).float(),
            iterations=torch.full((targets,), steps_taken, dtype=torch.int64),
            stop_reasons=reasons,
            seconds=time.perf_counter() - started,
            settings={**settings_of(self), "basis": basis.name, "policy": oracle.policy.spec, "budget": oracle.budget,
                      "start_found": int(found.sum())},
            queries_used=oracle.queries_used - queries_at_start,
        )
