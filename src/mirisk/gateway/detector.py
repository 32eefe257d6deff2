"""Probe detection: flag API keys whose query stream looks like a model-inversion search.

Stateful detection after Chen, Carlini & Wagner, "Stateful Detection of Black-Box
Adversarial Attacks" (ACM SPAI 2020), made two-sided in the spirit of PRADA (Juuti et al.,
EuroS&P 2019), which flags a client whose query distances stop looking like benign ones.
Each key keeps a history of compact sketches of its inputs (standardised, then a fixed
random projection, which preserves distances by the Johnson-Lindenstrauss lemma); an
input's score is the mean distance to its ``neighbours`` nearest earlier inputs.
- Too close: a search that learns from the answers sends inputs near ones it already sent
  (finite-difference samples, spheres around a boundary point, steps along a path).
- Too far: a search in a data-free basis sends patterns unlike any natural input, and
  unlike each other.
An input is *probe-like* when its score falls outside the band ``[low, high]`` that holds
all but a chosen share of benign traffic (:func:`calibrate`); a key is flagged when at
least ``probe_fraction`` of its last ``window`` inputs are probe-like.

Threat model it answers: a black-box attacker (scores, top-k or label-only) querying
through one key. It cannot see an attacker who spreads the search over many keys (Sybil
accounts), which the per-key budgets and key issuance must limit instead."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mirisk.errors import MiriskError

ACTIONS = ("alert", "throttle", "block")


@dataclass(frozen=True)
class DetectorSettings:
    """How the detector judges a key's stream, and what the gateway does to a flagged key."""

    low: float
    high: float
    neighbours: int = 5
    history: int = 2000
    window: int = 100
    probe_fraction: float = 0.5
    action: str = "alert"
    throttle_per_minute: int = 6
    sketch_size: int = 128
    seed: int = 0

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise MiriskError(f"detector action must be one of {', '.join(ACTIONS)}, got {self.action!r}")
        if not 0 <= self.low < self.high or not 0 < self.probe_fraction <= 1:
            raise MiriskError(f"the detector needs 0 <= low < high (got {self.low:g}, {self.high:g}) and a probe "
                              f"fraction in (0, 1]")
        if min(self.neighbours, self.window, self.throttle_per_minute, self.sketch_size) < 1 \
                or self.history < self.neighbours:
            raise MiriskError("the detector's neighbours, window, throttle rate and sketch size must be >= 1, "
                              "and its history at least its neighbours")


@dataclass
class _KeyState:
    sketches: torch.Tensor
    recent: deque[bool]
    flagged: bool = False


@dataclass(frozen=True)
class Alert:
    """A key just crossed the line: why, in words, and the share of probe-like inputs."""

    key_id: str
    reason: str
    probe_share: float


@dataclass
class ProbeDetector:
    """Per-key stateful detector over inputs of ``input_size`` values each."""

    settings: DetectorSettings
    input_size: int
    _projection: torch.Tensor = field(init=False, repr=False)
    _states: dict[str, _KeyState] = field(init=False, default_factory=dict, repr=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        generator = torch.Generator().manual_seed(self.settings.seed)
        size = self.settings.sketch_size
        self._projection = torch.randn(self.input_size, size, generator=generator) / size ** 0.5

    def sketch(self, inputs: np.ndarray) -> torch.Tensor:
        """``[N, input_size]`` -> ``[N, sketch_size]``: zero-mean, unit-norm, projected."""
        flat = torch.as_tensor(inputs, dtype=torch.float32).reshape(len(inputs), -1)
        centred = flat - flat.mean(dim=1, keepdim=True)
        unit = centred / centred.norm(dim=1, keepdim=True).clamp_min(1e-8)
        return unit @ self._projection

    def neighbour_distances(self, history: torch.Tensor, sketches: torch.Tensor) -> torch.Tensor:
        """Each new sketch's mean distance to its nearest ``neighbours`` among the history
        and the inputs before it in the same batch (inf while fewer exist)."""
        pool = torch.cat([history, sketches])
        distances = torch.cdist(sketches, pool)
        earlier = torch.arange(len(pool)).unsqueeze(0) < (len(history) + torch.arange(len(sketches))).unsqueeze(1)
        distances = distances.masked_fill(~earlier, float("inf"))
        k = self.settings.neighbours
        if pool.shape[0] < k + 1:
            return torch.full((len(sketches),), float("inf"))
        return distances.topk(k, dim=1, largest=False).values.mean(dim=1)

    def observe(self, key_id: str, inputs: np.ndarray) -> Alert | None:
        """Add a batch to the key's stream; an Alert the first time the key is flagged."""
        settings = self.settings
        sketches = self.sketch(inputs)
        with self._lock:
            state = self._states.setdefault(
                key_id, _KeyState(torch.empty(0, settings.sketch_size), deque(maxlen=settings.window)))
            distances = self.neighbour_distances(state.sketches, sketches)
            probe_like = torch.isfinite(distances) & ((distances < settings.low) | (distances > settings.high))
            state.sketches = torch.cat([state.sketches, sketches])[-settings.history:]
            state.recent.extend(probe_like.tolist())
            share = sum(state.recent) / settings.window
            if state.flagged or share < settings.probe_fraction:
                return None
            state.flagged = True
        reason = (f"{sum(state.recent)} of its last {settings.window} inputs lay outside the benign band "
                  f"[{settings.low:.3f}, {settings.high:.3f}] of mean distance to their {settings.neighbours} "
                  f"nearest earlier inputs")
        return Alert(key_id, reason, share)


def calibrate(benign: np.ndarray, false_positive_rate: float = 0.01, seed: int = 0, **options: Any) -> DetectorSettings:
    """Settings whose band leaves out ``false_positive_rate`` of benign inputs (half on each
    side) when all of ``benign`` (``[N, ...]``) is sent by one key in a random order;
    ``options`` are the other :class:`DetectorSettings` fields."""
    neighbours = int(options.get("neighbours", 5))
    if not 0 < false_positive_rate < 1 or len(benign) <= 2 * neighbours:
        raise MiriskError(f"calibration needs more than {2 * neighbours} benign inputs and a rate in (0, 1), got "
                          f"{len(benign)} inputs and {false_positive_rate:g}")
    probe = ProbeDetector(DetectorSettings(low=0.0, high=1.0, **options), int(np.prod(benign.shape[1:])))
    order = np.random.default_rng(seed).permutation(len(benign))
    distances = probe.neighbour_distances(torch.empty(0, probe.settings.sketch_size), probe.sketch(benign[order]))
    finite = distances[torch.isfinite(distances)].double()
    low, high = torch.quantile(finite, torch.tensor([false_positive_rate / 2, 1 - false_positive_rate / 2],
                                                    dtype=torch.float64)).tolist()
    return DetectorSettings(low=low, high=high, **options)
