"""Threat models: what an attacker can reach and what it knows."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from mirisk.errors import MiriskError
from mirisk.validation import check_budget


class AccessLevel(str, Enum):
    """How the attacker reaches the model, from most to least revealing."""

    WHITE_BOX = "white-box"
    SCORES = "scores"
    TOP_K = "top-k"
    LABEL_ONLY = "label-only"

    @classmethod
    def _missing_(cls, value: object) -> AccessLevel:
        raise MiriskError(f"unknown access level {value!r}; choose from {', '.join(level.value for level in cls)}")


@dataclass(frozen=True)
class ThreatModel:
    """An access level, the attacker's knowledge in words, and a query budget (None: unlimited)."""

    access: AccessLevel
    knowledge: tuple[str, ...]
    query_budget: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "access", AccessLevel(self.access))
        if isinstance(self.knowledge, str) or not all(isinstance(item, str) for item in self.knowledge):
            raise MiriskError(f"a threat model's knowledge is a tuple of sentences, got {self.knowledge!r}")
        check_budget("the query budget", self.query_budget)

    def as_dict(self) -> dict[str, Any]:
        return {"access": self.access.value, "knowledge": list(self.knowledge), "query_budget": self.query_budget}
