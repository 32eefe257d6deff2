"""The model behind the gateway: softmax probabilities restricted by a key's output policy."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import numpy as np
import torch

from mirisk.access.policies import OutputPolicy, parse_policy
from mirisk.models.target import TargetModel

LOG = logging.getLogger("mirisk.gateway")


class ServedModel:
    """A frozen copy of a target answering float32 batches. Several requests' inputs go
    through one forward pass (at most ``max_inputs`` inputs a pass, what one request may
    send), and each request's policy is applied to its own rows in the order given, so
    stateful policies (score noise) draw their randomness in a defined order.

    Requests share a pass only if the network answers each input independently of the
    others in its batch (checked once, on two seeded inputs): otherwise one client's
    answer could depend on another's input, and each request gets a pass of its own."""

    def __init__(self, target: TargetModel, max_inputs: int = 64) -> None:
        self.target = target
        self._network = target.frozen_network()
        self._policies: dict[str, OutputPolicy] = {}
        self._lock = threading.Lock()
        self.shares_passes = rows_independent(self._network, target)
        if not self.shares_passes:
            LOG.warning("the served network did not answer two inputs together as it answers each alone "
                        "(or could not answer them); each request is answered in a forward pass of its own")
        self.max_inputs = max_inputs if self.shares_passes else 0

    def policy(self, spec: str) -> OutputPolicy:
        with self._lock:
            policy = self._policies.get(spec)
            if policy is None:  # parsed once per spec: a noise policy keeps one random stream
                policy = self._policies[spec] = parse_policy(spec)
            return policy

    def answer(self, batch: np.ndarray, policy_spec: str) -> np.ndarray:
        """Policy-restricted outputs ``[N, n_classes]`` for a validated batch."""
        return self.answer_all([(batch, policy_spec)])[0]

    def answer_all(self, requests: Sequence[tuple[np.ndarray, str]]) -> list[np.ndarray]:
        """Each request's policy-restricted outputs, from as few forward passes as
        ``max_inputs`` allows (a request's inputs are never split between passes). Grouped
        rows can differ from a lone request's in the last bits of float32 (about 3e-6)."""
        policies = [self.policy(spec) for _, spec in requests]
        outputs: list[np.ndarray] = []
        if not requests:
            return outputs
        with self._lock, torch.inference_mode():
            for start, stop in _passes([len(batch) for batch, _ in requests], self.max_inputs):
                batches = [batch for batch, _ in requests[start:stop]]
                inputs = torch.from_numpy(batches[0] if len(batches) == 1 else np.concatenate(batches))
                probabilities = torch.softmax(self._network(inputs), dim=1)
                for rows, policy in zip(probabilities.split([len(b) for b in batches]), policies[start:stop],
                                        strict=True):
                    outputs.append(policy.apply(rows).numpy())
        return outputs


def rows_independent(network: torch.nn.Module, target: TargetModel, tolerance: float = 1e-4) -> bool:
    """Whether ``network`` answers two seeded inputs (uniform in the target's value range)
    together as it answers each alone, to ``tolerance`` in probability (False if it cannot
    answer them: a request is then never grouped with another)."""
    low, high = target.value_range
    inputs = torch.from_numpy(np.random.default_rng(0).uniform(low, high, (2, *target.input_shape)).astype(np.float32))
    try:
        with torch.inference_mode():
            together = torch.softmax(network(inputs), dim=1)
            alone = torch.cat([torch.softmax(network(inputs[i:i + 1]), dim=1) for i in range(2)])
    except Exception:  # the request path reports the network's own error, request by request
        return False
    return together.shape == alone.shape and bool(torch.allclose(together, alone, rtol=0.0, atol=tolerance))


def _passes(sizes: list[int], max_inputs: int) -> list[tuple[int, int]]:
    """Consecutive runs of requests (start, stop) holding at most ``max_inputs`` inputs,
    or one request alone if it holds more (every request alone when ``max_inputs`` is 0)."""
    passes, start, held = [], 0, 0
    for index, size in enumerate(sizes):
        if index > start and held + size > max_inputs:
            passes.append((start, index))
            start, held = index, 0
        held += size
    passes.append((start, len(sizes)))
    return passes
