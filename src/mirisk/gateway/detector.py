"""Probe detection: flag API keys whose query stream looks like a model-inversion search.

Stateful detection after Chen, Carlini & Wagner, "Stateful Detection of Black-Box
Adversarial Attacks" (ACM SPAI 2020), made two-sided in the spirit of PRADA (Juuti et al.,
EuroS&P 2019), which flags a client whose query distances stop looking like benign ones.
Each key keeps a history of compact sketches of its inputs (standardised, then a fixed
CountSketch projection, which keeps distances in expectation); an input's score is the mean distance to its ``neighbours`` nearest earlier inputs.
- Too close: a search that learns from the answers sends inputs near ones it already sent
  (finite-difference samples, spheres around a boundary point, steps along a path).
- Too far: a search in a data-free basis sends patterns unlike any natural input, and
  unlike each other.
An exact repeat of an earlier input (a retry) is ignored. An input is *probe-like* when
its score falls outside the band ``[low, high]`` that holds
all but a chosen share of benign traffic (:func:`calibrate`); a key is flagged when at
least ``probe_fraction`` of its last ``window`` inputs are probe-like.

Threat model it answers: a black-box attacker (scores, top-k or label-only) querying
through one key. It cannot see an attacker who spreads the search over many keys (Sybil
accounts), which the per-key budgets and key issuance must limit instead.

Memory is bounded: each key's history takes ``history x sketch_size`` float32 values (1 MiB
at the defaults), and at most ``max_keys`` keys are watched at once; the key idle longest
is forgotten first (its flag, if any, stays in the database). A forgotten key starts a
fresh history, so an attacker who pauses long enough for ``max_keys`` other keys to be
served resets its own: size ``max_keys`` above the keys active at once."""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from mirisk.errors import MiriskError

ACTIONS = ("alert", "throttle", "block")
REPEAT_DISTANCE = 1e-4


@dataclass(frozen=True)
class DetectorSettings:
    """How the detector judges a key's stream, and what the gateway does to a flagged key."""

    low: float
    high: float
    neighbours: int = 5
    history: int = 1000
    window: int = 100
    probe_fraction: float = 0.5
    action: str = "alert"
    throttle_per_minute: int = 6
    sketch_size: int = 256
    seed: int = 0
    max_keys: int = 256

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise MiriskError(f"detector action must be one of {', '.join(ACTIONS)}, got {self.action!r}")
        if not 0 <= self.low < self.high or not 0 < self.probe_fraction <= 1:
            raise MiriskError(f"the detector needs 0 <= low < high (got {self.low:g}, {self.high:g}) and a probe "
                              f"fraction in (0, 1]")
        if min(self.neighbours, self.window, self.throttle_per_minute, self.sketch_size, self.max_keys) < 1 \
                or self.history < self.neighbours:
            raise MiriskError("the detector's neighbours, window, throttle rate, sketch size and key count must be "
                              ">= 1, and its history at least its neighbours")


@dataclass
class _KeyState:
    """A ring buffer of the key's last ``history`` sketches and its last verdicts."""

    sketches: np.ndarray
    squared_norms: np.ndarray
    recent: deque[bool]
    filled: int = 0
    position: int = 0
    flagged: bool = False

    def add(self, sketches: np.ndarray) -> None:
        size = len(self.sketches)
        slots = ((self.position + np.arange(len(sketches))) % size)[-size:]
        self.sketches[slots] = sketches[-size:]
        self.squared_norms[slots] = (sketches[-size:] ** 2).sum(axis=1)
        self.position = int((self.position + len(sketches)) % size)
        self.filled = min(size, self.filled + len(sketches))


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
    _projection: sparse.csr_matrix = field(init=False, repr=False)
    _states: OrderedDict[str, _KeyState] = field(init=False, default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        # CountSketch (Charikar, Chen & Farach-Colton 2002): each input value is added, with a
        # random sign, to one of ``sketch_size`` buckets; distances are kept in expectation
        # (Clarkson & Woodruff 2013), at a cost linear in the input size.
        rng = np.random.default_rng(self.settings.seed)
        buckets = rng.integers(0, self.settings.sketch_size, self.input_size)
        signs = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), self.input_size)
        # Stored as [sketch_size, input_size] so a batch is sketched as one sparse product.
        self._projection = sparse.csr_matrix((signs, (buckets, np.arange(self.input_size))),
                                             shape=(self.settings.sketch_size, self.input_size))
        self._bucket_signs = np.asarray(self._projection.sum(axis=1), dtype=np.float64).ravel()

    def sketch(self, inputs: np.ndarray) -> np.ndarray:
        """``[N, input_size]`` -> ``[N, sketch_size]``: zero-mean, unit-norm, sketched."""
        flat = np.asarray(inputs, dtype=np.float32).reshape(len(inputs), -1)
        # The projection is linear, so the raw inputs are sketched once and centred and
        # scaled afterwards, without a centred copy of the batch.
        raw = (self._projection @ np.ascontiguousarray(flat.T)).T
        total = flat.sum(axis=1, dtype=np.float64)
        mean = total / self.input_size
        squares = np.einsum("ij,ij->i", flat, flat, dtype=np.float64)
        norms = np.sqrt(np.maximum(squares - total * mean, 0.0))
        unit = (raw - mean[:, None] * self._bucket_signs) / np.maximum(norms, 1e-8)[:, None]
        return np.ascontiguousarray(unit, dtype=np.float32)

    def nearest(self, history: np.ndarray, sketches: np.ndarray,
                history_norms: np.ndarray | None = None) -> np.ndarray:
        """``[N, neighbours]``: each new sketch's distances, smallest first, to its nearest
        earlier inputs among the history (whose squared norms may be passed in) and the
        inputs before it in the same batch (inf where fewer exist)."""
        k = self.settings.neighbours
        if len(history) + len(sketches) < k + 1:
            return np.full((len(sketches), k), np.inf)
        norms = (sketches ** 2).sum(axis=1)
        if history_norms is None:
            history_norms = (history ** 2).sum(axis=1)
        to_history = norms[:, None] + history_norms[None, :] - 2 * sketches @ history.T
        within = norms[:, None] + norms[None, :] - 2 * sketches @ sketches.T
        earlier = np.tril(np.ones((len(sketches), len(sketches)), dtype=bool), k=-1)
        squared = np.concatenate([to_history, np.where(earlier, within, np.inf)], axis=1)
        smallest = np.sort(np.partition(squared, k - 1, axis=1)[:, :k], axis=1)
        return np.sqrt(np.maximum(smallest, 0.0))

    @property
    def watched(self) -> int:
        """How many keys' histories are held now."""
        return len(self._states)

    def observe(self, key_id: str, inputs: np.ndarray) -> Alert | None:
        """Add a batch to the key's stream; an Alert the first time the key is flagged."""
        settings = self.settings
        sketches = self.sketch(inputs)
        with self._lock:
            state = self._states.get(key_id)
            if state is None:
                state = self._states[key_id] = _KeyState(
                    np.zeros((settings.history, settings.sketch_size), dtype=np.float32),
                    np.zeros(settings.history, dtype=np.float32), deque(maxlen=settings.window))
                if len(self._states) > settings.max_keys:
                    self._states.popitem(last=False)
            self._states.move_to_end(key_id)
            nearest = self.nearest(state.sketches[:state.filled], sketches, state.squared_norms[:state.filled])
            # An exact repeat (a retry) tells a deterministic model's prober nothing new: it is
            # neither scored nor kept. (The budget still counts it.)
            fresh = nearest[:, 0] > REPEAT_DISTANCE
            distances = nearest[fresh].mean(axis=1)
            probe_like = np.isfinite(distances) & ((distances < settings.low) | (distances > settings.high))
            state.add(sketches[fresh])
            state.recent.extend(probe_like.tolist())
            probes = sum(state.recent)
            if state.flagged or probes < settings.probe_fraction * settings.window:
                return None
            state.flagged = True
        reason = (f"{probes} of its last {settings.window} inputs lay outside the benign band "
                  f"[{settings.low:.3f}, {settings.high:.3f}] of mean distance to their {settings.neighbours} "
                  f"nearest earlier inputs")
        return Alert(key_id, reason, probes / settings.window)


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
    history = np.zeros((0, probe.settings.sketch_size), dtype=np.float32)
    nearest = probe.nearest(history, probe.sketch(benign[order]))
    distances = nearest[nearest[:, 0] > REPEAT_DISTANCE].mean(axis=1)
    low, high = np.quantile(distances[np.isfinite(distances)], [false_positive_rate / 2, 1 - false_positive_rate / 2])
    return DetectorSettings(low=float(low), high=float(high), **options)
