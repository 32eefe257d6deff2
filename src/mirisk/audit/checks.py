"""What an audit's defence checks measured, typed: each black-box attack rerun under a
per-deployment query budget (``defences/budget_checks.json`` holds their ``to_json``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mirisk.audit.plan import AttackUnit
from mirisk.metrics.identification import ImageIdentification


@dataclass(frozen=True)
class BudgetCheck:
    """One black-box attack rerun under a per-deployment query budget: the budget, what it
    spent, and what the independent judge, re-identification and the pixel evaluator made
    of its reconstructions (one row of ``defences/budget_checks.json``)."""

    unit: str
    access: str
    budget: int
    queries_used: int
    queries_per_person: float
    judge_top1: float
    judge_top1_ci: tuple[float, float]
    face_rate: float
    reid_top1: float
    identification_top1: float

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "judge_top1_ci": list(self.judge_top1_ci)}

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> BudgetCheck:
        return cls(**{**payload, "judge_top1_ci": tuple(payload["judge_top1_ci"])})

    @classmethod
    def measured(cls, unit: AttackUnit, budget: int, payload: dict[str, Any]) -> BudgetCheck:
        """The check of ``unit`` under ``budget`` from its rerun's payload."""
        return cls(unit=unit.id, access=unit.access.value, budget=budget, queries_used=payload["queries_used"],
                   queries_per_person=budget / payload["n_targets"],
                   **ImageIdentification.from_json(payload["metrics"]).headline())
