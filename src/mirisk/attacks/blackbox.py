"""Score-based black-box model inversion: MI-Face's objective, gradients estimated from queries.

Gradient estimate: natural evolution strategies with antithetic Gaussian samples (Wierstra
et al., JMLR 2014), the estimator Ilyas, Engstrom, Athalye & Lin (ICML 2018) used for
query-limited black-box attacks, taken in a low-dimensional image basis: the lowest
frequencies of the 2-D DCT (no data needed; Guo, Frank & Weinberger, UAI 2019), or the
principal components of public faces of *other* people (an auxiliary prior, the role of
Fredrikson et al.'s AuxTerm), or the latent space of a face generator learnt from other
people (GMI's prior, Zhang et al. CVPR 2020, searched by queries alone). Ascent on the log
of the returned score with Adam.

Threat model: scores through an oracle (full, top-k, rounded or noisy, as its output policy
allows). The attacker sends images and sees only the policy's output; it knows the label
of the person to reconstruct and, optionally, public photos of other people; every image
sent counts against the oracle's query budget.
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
class ScoreBlackBox:
    """NES-estimated ascent on ``log max(score_label, floor)`` in ``basis`` (None: the
    low DCT frequencies of the model's input); every target of the batch in one oracle call
    per step (``2 * samples`` queries per target per step)."""

    name = "blackbox-scores"
    iterations: int = 300
    samples: int = 20
    sigma: float = 0.3
    learning_rate: float = 0.1
    floor: float = 1e-6
    basis: CodeSpace | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        check_whole("the black-box attack's iterations", self.iterations)
        check_whole("the black-box attack's samples", self.samples)
        for name in ("sigma", "learning_rate", "floor"):
            check_number(f"the black-box attack's {name}", getattr(self, name), 0, low_open=True)

    def run(self, oracle: QueryAccess, target_labels: Sequence[int] | torch.Tensor, *,
            generator: torch.Generator | None = None, progress: Progress | None = None) -> AttackResult:
        """Reconstruct one image per label; stops cleanly, keeping its best, when the budget runs out."""
        prepare_torch()
        labels = as_target_labels(target_labels, oracle.n_classes)
        generator, basis = attack_generator(generator), basis_for(self.basis, oracle.input_shape)
        started, queries_at_start = time.perf_counter(), oracle.queries_used
        targets, dimensions = len(labels), basis.dimensions
        per_step = targets * 2 * self.samples

        code = torch.zeros(targets, dimensions)
        code.requires_grad_(True)
        optimiser = torch.optim.Adam([code], lr=self.learning_rate, maximize=True)
        best_code = code.detach().clone()
        best_score = torch.full((targets,), -1.0)
        columns = labels.repeat_interleave(2 * self.samples)
        steps_taken, stop = 0, "max-iterations"

        for step in range(self.iterations):
            remaining = oracle.remaining
            if remaining is not None and remaining < per_step:
                stop = "budget"
                break
            noise = torch.randn(targets, self.samples, dimensions, generator=generator)
            directions = torch.cat([noise, -noise], dim=1)
            candidates = code.detach()[:, None, :] + self.sigma * directions
            images = basis.decode(candidates.reshape(-1, dimensions), oracle.input_shape, oracle.value_range)
            try:
                scores = oracle.query(images)[torch.arange(len(images)), columns].view(targets, 2 * self.samples)
            except OracleRefused as refused:
                stop = refused.reason
                break
            log_scores = scores.clamp_min(self.floor).log()
            gradient = ((log_scores - log_scores.mean(1, keepdim=True))[..., None] * directions).mean(1) / self.sigma
            top_score, top_index = scores.max(dim=1)
            better = top_score > best_score
            best_score = torch.where(better, top_score, best_score)
            best_code[better] = candidates[better, top_index[better]]
            code.grad = gradient
            optimiser.step()
            steps_taken = step + 1
            if progress is not None:
                progress(steps_taken)

        reconstructions = basis.decode(best_code, oracle.input_shape, oracle.value_range)
        settings = {**settings_of(self), "basis": basis.name, "policy": oracle.policy.spec, "budget": oracle.budget}
        return AttackResult(
            attack=self.name,
            threat_model=ThreatModel(
                access=oracle.policy.access,
                knowledge=("output of the oracle's policy", "the target person's label", f"image basis: {basis.name}"),
                query_budget=oracle.budget,
            ),
            reconstructions=reconstructions,
            target_labels=labels,
            final_cost=1.0 - best_score.clamp_min(0.0),
            iterations=torch.full((targets,), steps_taken, dtype=torch.int64),
            stop_reasons=[stop] * targets,
            seconds=time.perf_counter() - started,
            settings=settings,
            queries_used=oracle.queries_used - queries_at_start,
        )
