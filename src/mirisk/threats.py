"""Threat models: what an attacker can reach and what it knows."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


class AccessLevel(str, Enum):
    """How the attacker reaches the model, from most to least revealing."""

    WHITE_BOX = "white-box"
    SCORES = "scores"
    TOP_K = "top-k"
    LABEL_ONLY = "label-only"


@dataclass(frozen=True)
class ThreatModel:
    """An access level, the attacker's knowledge in words, and a query budget (None: unlimited)."""

    access: AccessLevel
    knowledge: tuple[str, ...]
    query_budget: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"access": self.access.value, "knowledge": list(self.knowledge), "query_budget": self.query_budget}
