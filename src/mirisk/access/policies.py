"""Output policies: what a deployed model reveals for each query.

The same classes restrict the oracle an audit attacks and (later) the serving gateway, so
an audit's verdict on a policy is the verdict on the deployment. Each works on a batch of
class-probability rows ``[N, K]`` and returns rows of the same shape.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from mirisk.errors import MiriskError
from mirisk.threats import AccessLevel

MAX_DECIMALS = 8  # float32 probabilities carry about 7 significant digits
MAX_GAMMA = 100.0


class OutputPolicy(ABC):
    """A restriction of the probability rows a model returns."""

    access: AccessLevel

    @abstractmethod
    def apply(self, probabilities: torch.Tensor) -> torch.Tensor:
        """The restricted output for each row of ``probabilities``."""

    @property
    @abstractmethod
    def spec(self) -> str:
        """The policy as the string :func:`parse_policy` reads."""

    def check_classes(self, n_classes: int) -> None:
        """Refuse a policy that makes no sense for a model of ``n_classes`` classes."""


@dataclass(frozen=True)
class FullScores(OutputPolicy):
    """Every class probability, unrounded: the most an API can reveal."""

    access = AccessLevel.SCORES

    def apply(self, probabilities: torch.Tensor) -> torch.Tensor:
        return probabilities

    @property
    def spec(self) -> str:
        return "scores"


@dataclass(frozen=True)
class TopK(OutputPolicy):
    """Only the ``k`` largest probabilities; the others read 0."""

    k: int
    access = AccessLevel.TOP_K

    def __post_init__(self) -> None:
        if self.k < 1:
            raise MiriskError(f"top-k needs k >= 1, got {self.k}")

    def check_classes(self, n_classes: int) -> None:
        if self.k >= n_classes:
            raise MiriskError(f"topk:{self.k} on a model of {n_classes} classes reveals every score; "
                              f"choose k below {n_classes} (or serve scores)")

    def apply(self, probabilities: torch.Tensor) -> torch.Tensor:
        k = min(self.k, probabilities.shape[1])
        values, indices = probabilities.topk(k, dim=1)
        return torch.zeros_like(probabilities).scatter_(1, indices, values)

    @property
    def spec(self) -> str:
        return f"topk:{self.k}"


@dataclass(frozen=True)
class Rounding(OutputPolicy):
    """Probabilities rounded to ``decimals`` places: the countermeasure Fredrikson et al.
    (CCS 2015, section 7) evaluated against MI-Face."""

    decimals: int
    access = AccessLevel.SCORES

    def __post_init__(self) -> None:
        if not 0 <= self.decimals <= MAX_DECIMALS:
            raise MiriskError(f"rounding needs 0 <= decimals <= {MAX_DECIMALS} (float32 scores hold no more), "
                              f"got {self.decimals}")

    def apply(self, probabilities: torch.Tensor) -> torch.Tensor:
        return torch.round(probabilities, decimals=self.decimals)

    @property
    def spec(self) -> str:
        return f"round:{self.decimals}"


@dataclass(frozen=True)
class ScoreNoise(OutputPolicy):
    """Laplace or Gaussian noise of a given scale added to every probability, then clipped
    to [0, 1] (output perturbation in the spirit of Dwork et al. 2006; the scale is a
    setting, not a privacy guarantee unless calibrated to the scores' sensitivity)."""

    distribution: str
    scale: float
    seed: int = 0
    access = AccessLevel.SCORES

    def __post_init__(self) -> None:
        if self.distribution not in ("laplace", "gaussian") or not 0 < self.scale <= 1:
            raise MiriskError("noise needs laplace or gaussian and a finite scale in (0, 1] (probabilities lie in "
                              f"[0, 1]), e.g. noise:laplace:0.05; got {self.distribution}:{self.scale}")
        object.__setattr__(self, "_generator", torch.Generator().manual_seed(self.seed))

    def apply(self, probabilities: torch.Tensor) -> torch.Tensor:
        generator: torch.Generator = self._generator  # type: ignore[attr-defined]
        if self.distribution == "gaussian":
            noise = torch.randn(probabilities.shape, generator=generator) * self.scale
        else:
            uniform = torch.rand(probabilities.shape, generator=generator) - 0.5
            noise = -self.scale * uniform.sign() * torch.log1p(-2 * uniform.abs())
        return (probabilities + noise).clamp(0.0, 1.0)

    @property
    def spec(self) -> str:
        return f"noise:{self.distribution}:{self.scale:g}"


@dataclass(frozen=True)
class ReverseSigmoid(OutputPolicy):
    """Lee, Edwards, Molloy & Srivastava, "Defending Against NN Model Stealing Attacks Using
    Deceptive Perturbations" (IEEE S&P Workshops 2019): each probability ``y`` becomes
    ``y - beta * (sigmoid(gamma * logit(y)) - 1/2)``, clipped and renormalised. The top
    class is kept for ``beta`` small enough; the scores' slope is scrambled."""

    beta: float
    gamma: float
    access = AccessLevel.SCORES

    def __post_init__(self) -> None:
        if not (0 < self.beta <= 1 and 0 < self.gamma <= MAX_GAMMA):
            raise MiriskError(f"reverse-sigmoid needs 0 < beta <= 1 and 0 < gamma <= {MAX_GAMMA:g} (finite), e.g. "
                              f"reverse-sigmoid:0.5,0.1; got {self.beta},{self.gamma}")

    def apply(self, probabilities: torch.Tensor) -> torch.Tensor:
        clipped = probabilities.clamp(1e-7, 1 - 1e-7)
        perturbed = clipped - self.beta * (torch.sigmoid(self.gamma * torch.logit(clipped)) - 0.5)
        perturbed = perturbed.clamp_min(0.0)
        return perturbed / perturbed.sum(dim=1, keepdim=True).clamp_min(1e-12)

    @property
    def spec(self) -> str:
        return f"reverse-sigmoid:{self.beta:g},{self.gamma:g}"


@dataclass(frozen=True)
class LabelOnly(OutputPolicy):
    """Only the predicted class, as a one-hot row: the binary decision of the seed brief."""

    access = AccessLevel.LABEL_ONLY

    def apply(self, probabilities: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(probabilities.argmax(dim=1), probabilities.shape[1]).to(probabilities.dtype)

    @property
    def spec(self) -> str:
        return "label"


@dataclass(frozen=True)
class Chain(OutputPolicy):
    """Policies applied in order (e.g. ``topk:3+round:2``); reveals the least of its parts."""

    parts: tuple[OutputPolicy, ...]

    @property
    def access(self) -> AccessLevel:  # type: ignore[override]
        order = list(AccessLevel)
        return max((part.access for part in self.parts), key=order.index)

    def apply(self, probabilities: torch.Tensor) -> torch.Tensor:
        for part in self.parts:
            probabilities = part.apply(probabilities)
        return probabilities

    def check_classes(self, n_classes: int) -> None:
        for part in self.parts:
            part.check_classes(n_classes)

    @property
    def spec(self) -> str:
        return "+".join(part.spec for part in self.parts)


def _number(text: str, kind: type, spec: str) -> float | int:
    """A plain finite number (ASCII digits only: no NaN, inf, underscores or other scripts)."""
    text = text.strip()
    try:
        if not text.isascii() or "_" in text:
            raise ValueError(text)
        value = kind(text)
    except ValueError:
        raise MiriskError(f"bad number {text!r} in output policy {spec!r}") from None
    if not math.isfinite(value):
        raise MiriskError(f"bad number {text!r} in output policy {spec!r}: it must be finite")
    return value


def parse_policy(spec: str) -> OutputPolicy:
    """Read ``scores``, ``topk:K``, ``round:D``, ``noise:laplace|gaussian:SCALE``,
    ``reverse-sigmoid:BETA,GAMMA``, ``label``, or several joined by ``+``."""
    if not isinstance(spec, str):
        raise MiriskError(f"an output policy is written as text (e.g. 'topk:3'), not {type(spec).__name__}")
    parts = [part.strip() for part in spec.split("+")]
    if len(parts) > 1:
        return Chain(tuple(parse_policy(part) for part in parts))
    name, _, argument = spec.strip().partition(":")
    if name == "scores" and not argument:
        return FullScores()
    if name == "label" and not argument:
        return LabelOnly()
    if name == "topk" and argument:
        return TopK(int(_number(argument, int, spec)))
    if name == "round" and argument:
        return Rounding(int(_number(argument, int, spec)))
    if name == "noise" and argument.count(":") == 1:
        distribution, scale = argument.split(":")
        return ScoreNoise(distribution, float(_number(scale, float, spec)))
    if name == "reverse-sigmoid" and argument.count(",") == 1:
        beta, gamma = argument.split(",")
        return ReverseSigmoid(float(_number(beta, float, spec)), float(_number(gamma, float, spec)))
    raise MiriskError(
        f"unknown output policy {spec!r}; use scores, topk:K, round:D, noise:laplace:S, "
        f"noise:gaussian:S, reverse-sigmoid:BETA,GAMMA or label (join several with +)"
    )
