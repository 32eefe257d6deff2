"""Measuring the probe detector: an oracle whose queries also stream through a detector, as
if an attack sent them through one gateway key in requests of ``batch`` inputs."""

from __future__ import annotations

from typing import Any

import torch

from mirisk.access.oracle import Oracle
from mirisk.gateway.detector import ProbeDetector


class WatchedOracle:
    """Wraps an :class:`Oracle`; ``flagged_at`` is the query count at which the detector
    flagged the stream (None: never). Everything else is the wrapped oracle's."""

    def __init__(self, oracle: Oracle, detector: ProbeDetector, batch: int = 64, key_id: str = "attacker") -> None:
        self.oracle, self.detector, self.batch, self.key_id = oracle, detector, batch, key_id
        self.flagged_at: int | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.oracle, name)

    def query(self, inputs: torch.Tensor) -> torch.Tensor:
        outputs = self.oracle.query(inputs)
        sent = self.oracle.queries_used - len(inputs)
        for chunk in inputs.split(self.batch):
            sent += len(chunk)
            if self.detector.observe(self.key_id, chunk.numpy()) is not None and self.flagged_at is None:
                self.flagged_at = sent
        return outputs
