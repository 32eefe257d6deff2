"""The oracle: the one door for black-box attacks.

It answers batches of inputs with policy-restricted outputs, counts every input as one
query, and never answers a batch that would take it past its budget. Attacks are handed
the oracle, never the model."""

from __future__ import annotations

from typing import Protocol

import torch

from mirisk.access.policies import OutputPolicy
from mirisk.errors import MiriskError
from mirisk.models.target import TargetModel
from mirisk.validation import check_whole


class OracleRefused(Exception):
    """The oracle will answer no more of an attack's queries; ``reason`` says why. Attacks
    stop at this and keep their best result so far."""

    reason = "refused"


class QueryBudgetExhausted(OracleRefused):
    """The oracle refused a batch: answering it would exceed the query budget."""

    reason = "budget"

    def __init__(self, requested: int, remaining: int) -> None:
        super().__init__(f"{requested} queries requested, {remaining} left in the budget")
        self.requested, self.remaining = requested, remaining


def check_query(inputs: torch.Tensor, input_shape: tuple[int, ...], remaining: int | None) -> None:
    """Refuse a batch of the wrong shape (one-line error) or one past the budget."""
    if tuple(inputs.shape[1:]) != tuple(input_shape):
        raise MiriskError(f"oracle inputs must be [N, {', '.join(map(str, input_shape))}], got {list(inputs.shape)}")
    if not torch.isfinite(inputs).all():
        raise MiriskError("oracle inputs hold NaN or infinite values; nothing was answered or charged")
    if remaining is not None and len(inputs) > remaining:
        raise QueryBudgetExhausted(len(inputs), remaining)


class QueryAccess(Protocol):
    """What a black-box attack may use: the local :class:`Oracle` and the gateway's
    :class:`~mirisk.access.remote.RemoteOracle` both offer it."""

    policy: OutputPolicy
    budget: int | None
    input_shape: tuple[int, ...]
    value_range: tuple[float, float]
    n_classes: int
    queries_used: int

    @property
    def remaining(self) -> int | None: ...

    def query(self, inputs: torch.Tensor) -> torch.Tensor: ...


class Oracle:
    """Black-box access to a local model through an output policy and a query budget."""

    def __init__(self, target: TargetModel, policy: OutputPolicy, budget: int | None = None) -> None:
        if not isinstance(policy, OutputPolicy):
            raise MiriskError(f"the oracle's policy is an OutputPolicy (mirisk.parse_policy('scores')), not "
                              f"{type(policy).__name__}")
        if budget is not None:
            check_whole("the query budget", budget, minimum=0)
        policy.check_classes(target.n_classes)
        self._network = target.frozen_network()
        self.policy = policy
        self.budget = budget
        self.input_shape = tuple(target.input_shape)
        self.value_range = (float(target.value_range[0]), float(target.value_range[1]))
        self.n_classes = target.n_classes
        self.queries_used = 0

    @property
    def remaining(self) -> int | None:
        """Queries left, or None when the budget is unlimited."""
        return None if self.budget is None else self.budget - self.queries_used

    @torch.no_grad()
    def query(self, inputs: torch.Tensor) -> torch.Tensor:
        """Policy-restricted outputs ``[N, n_classes]`` for ``inputs`` ``[N, *input_shape]``."""
        check_query(inputs, self.input_shape, self.remaining)
        self.queries_used += len(inputs)
        low, high = self.value_range
        probabilities = torch.softmax(self._network(inputs.clamp(low, high)), dim=1)
        return self.policy.apply(probabilities)
