"""MI-Face: white-box model inversion by gradient descent on the class confidence.

Fredrikson, Jha & Ristenpart, "Model Inversion Attacks that Exploit Confidence Information
and Basic Countermeasures", ACM CCS 2015, Algorithm 1.

Threat model: white-box. The attacker holds the model's weights and architecture and the
label (name) of the person to reconstruct; it holds none of the training images.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch

from mirisk.access.whitebox import WhiteBoxAccess
from mirisk.attacks.contract import Progress
from mirisk.attacks.result import AttackResult, as_target_labels
from mirisk.runtime import prepare_torch
from mirisk.threats import AccessLevel, ThreatModel
from mirisk.validation import check_number, check_whole

ImagePrior = Callable[[torch.Tensor], torch.Tensor]

THREAT_MODEL = ThreatModel(
    access=AccessLevel.WHITE_BOX,
    knowledge=("model weights and architecture", "the target person's label"),
)


@dataclass(frozen=True)
class TotalVariationPrior:
    """Auxiliary cost ``weight * TV(x)`` (mean absolute difference of neighbouring pixels;
    Rudin, Osher & Fatemi 1992): favours smooth, face-like images over adversarial noise."""

    weight: float = 0.05

    def __post_init__(self) -> None:
        check_number("the total-variation weight", self.weight, 0)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        vertical = (x[..., 1:, :] - x[..., :-1, :]).abs().mean(dim=(1, 2, 3))
        horizontal = (x[..., :, 1:] - x[..., :, :-1]).abs().mean(dim=(1, 2, 3))
        return self.weight * (vertical + horizontal)


@dataclass(frozen=True)
class MIFace:
    """Gradient descent on ``c(x) = 1 - p_label(x) + prior(x)`` from a flat image at
    ``start`` (a fraction of the value range; 0 is the paper's ``x0 = 0``), every target of
    the batch in one forward/backward per step.

    Per target it stops when ``c <= cost_threshold`` (the paper's gamma, read as confidence
    ``1 - gamma``) or when the best cost has not improved for ``patience`` steps (beta), or
    after ``iterations`` steps (alpha); it returns the best iterate, not the last. After each
    step ``process`` (the paper's PROCESS, e.g. a denoiser) is applied, then the image is
    clipped to the model's value range. ``learning_rate`` is the paper's lambda."""

    name = "miface"
    iterations: int = 5000
    patience: int = 100
    cost_threshold: float = 0.01
    learning_rate: float = 0.1
    prior: ImagePrior | None = None
    process: ImagePrior | None = None
    start: float = 0.0
    track_history: bool = False

    def __post_init__(self) -> None:
        check_whole("MI-Face iterations", self.iterations)
        check_whole("MI-Face patience", self.patience)
        check_number("MI-Face learning_rate", self.learning_rate, 0, low_open=True)
        check_number("MI-Face cost_threshold", self.cost_threshold, 0, 0.999999)
        check_number("MI-Face start", self.start, 0, 1)

    def run(self, access: WhiteBoxAccess, target_labels: Sequence[int] | torch.Tensor, *,
            generator: torch.Generator | None = None, progress: Progress | None = None) -> AttackResult:
        """Reconstruct one image per label in ``target_labels``; ``progress(step)`` is called
        each step. MI-Face draws nothing at random: ``generator`` is taken for the contract."""
        prepare_torch()
        labels = as_target_labels(target_labels, access.n_classes)
        low, high = access.value_range
        started = time.perf_counter()

        # Per-target records. The loop works on a block of the still-active targets,
        # compacted whenever some stop, so finished targets cost no compute. The best
        # iterate is saved lazily: only when a row's best iterate (the previous one) is
        # followed by a worse one, or when the row stops, so a steady descent copies nothing.
        best_x = torch.empty((len(labels), *access.input_shape))
        best_cost = torch.empty(len(labels))
        steps = torch.zeros(len(labels), dtype=torch.int64)
        reasons = ["max-iterations"] * len(labels)
        history = torch.full((self.iterations + 1, len(labels)), float("nan")) if self.track_history else None

        index = torch.arange(len(labels))
        rows, block_labels = torch.arange(len(labels)), labels
        x = torch.full((len(labels), *access.input_shape), low + self.start * (high - low))
        previous = x  # the iterate before ``x`` (none yet: no row's best is the previous one)
        block_best_cost = torch.full((len(labels),), float("inf"))
        best_is_previous = torch.zeros(len(labels), dtype=torch.bool)
        stale = torch.zeros(len(labels), dtype=torch.int64)

        for step in range(self.iterations + 1):
            last = step == self.iterations
            x.requires_grad_(not last)
            with torch.set_grad_enabled(not last):
                cost = 1.0 - access.probabilities(x)[rows, block_labels]
                if self.prior is not None:
                    cost = cost + self.prior(x)
                gradient = None if last else torch.autograd.grad(cost.sum(), x)[0]
            with torch.no_grad():
                x, cost = x.detach(), cost.detach()
                if history is not None:
                    history[step, index] = cost
                improved = cost < block_best_cost
                losing = best_is_previous & ~improved
                if bool(losing.any()):
                    best_x[index[losing]] = previous[losing]
                torch.where(improved, cost, block_best_cost, out=block_best_cost)
                stale.add_(1).masked_fill_(improved, 0)
                reached = cost <= self.cost_threshold
                stopping = reached | (stale >= self.patience)
                if last or bool(stopping.any()):
                    done = stopping | last
                    for position in stopping.nonzero().flatten().tolist():
                        reasons[int(index[position])] = "threshold" if reached[position] else "no-improvement"
                    best_x[index[done & improved]] = x[done & improved]
                    best_cost[index[done]] = block_best_cost[done]
                    keep = ~done
                    index, x, improved = index[keep], x[keep], improved[keep]
                    block_best_cost, stale = block_best_cost[keep], stale[keep]
                    gradient = None if gradient is None else gradient[keep]
                    rows, block_labels = torch.arange(len(index)), labels[index]
                if len(index) == 0:
                    break
                steps[index] += 1
                if progress is not None:
                    progress(step + 1)
                # The next iterate is written over the gradient: no large allocation per step.
                best_is_previous = improved
                x, previous = torch.add(x, gradient, alpha=-self.learning_rate, out=gradient), x
                if self.process is not None:
                    x = self.process(x)
                x.clamp_(low, high)

        settings = asdict(self)
        settings["prior"] = repr(self.prior)
        settings["process"] = repr(self.process)
        return AttackResult(
            attack=self.name,
            threat_model=THREAT_MODEL,
            reconstructions=best_x,
            target_labels=labels,
            final_cost=best_cost,
            iterations=steps,
            stop_reasons=reasons,
            seconds=time.perf_counter() - started,
            settings=settings,
            cost_history=history,
        )
