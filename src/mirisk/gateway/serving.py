"""The model behind the gateway: softmax probabilities restricted by a key's output policy."""

from __future__ import annotations

import threading

import numpy as np
import torch

from mirisk.access.policies import OutputPolicy, parse_policy
from mirisk.models.target import TargetModel


class ServedModel:
    """A frozen copy of a target answering float32 batches; one batch at a time, so
    stateful policies (score noise) draw their randomness in a defined order."""

    def __init__(self, target: TargetModel) -> None:
        self.target = target
        self._network = target.frozen_network()
        self._policies: dict[str, OutputPolicy] = {}
        self._lock = threading.Lock()

    def policy(self, spec: str) -> OutputPolicy:
        with self._lock:
            policy = self._policies.get(spec)
            if policy is None:  # parsed once per spec: a noise policy keeps one random stream
                policy = self._policies[spec] = parse_policy(spec)
            return policy

    def answer(self, batch: np.ndarray, policy_spec: str) -> np.ndarray:
        """Policy-restricted outputs ``[N, n_classes]`` for a validated batch."""
        policy = self.policy(policy_spec)
        with self._lock, torch.inference_mode():
            probabilities = torch.softmax(self._network(torch.from_numpy(batch)), dim=1)
            return policy.apply(probabilities).numpy()
