"""Black-box access to a tabular model (a dosing regressor or a risk classifier), with output
restriction.

``value``: the model's prediction as served (e.g. the weekly dose in mg); for a classifier
its probability for every class. ``band``: only the band the prediction falls in (e.g. low /
intermediate / high dose), the regression analogue of serving labels only; for a classifier
its predicted class. Every record asked about is one query."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mirisk.access.oracle import QueryBudgetExhausted
from mirisk.errors import MiriskError
from mirisk.models.tabular import TabularModel
from mirisk.validation import check_whole

OUTPUTS = ("value", "band")
# IWPC 2009 reported accuracy separately for patients needing <= 21 mg/week (low) and
# >= 49 mg/week (high); the same cut points make the three served bands.
DOSE_BANDS = (21.0, 49.0)


class TabularOracle:
    """Answers records with the model's value or its band (a classifier's probabilities or its
    label); counts queries against a budget."""

    def __init__(self, model: TabularModel, output: str = "value", bands: tuple[float, ...] = DOSE_BANDS,
                 budget: int | None = None) -> None:
        if output not in OUTPUTS:
            raise MiriskError(f"unknown tabular output {output!r}; choose one of {', '.join(OUTPUTS)}")
        if budget is not None:
            check_whole("the query budget", budget, minimum=0)
        if list(bands) != sorted(bands) or not bands:
            raise MiriskError(f"band edges must be increasing, got {list(bands)}")
        self._model = model
        self.schema = model.schema
        self.output = output
        self.bands = () if model.classifies else tuple(float(edge) for edge in bands)
        self.budget = budget
        self.queries_used = 0

    @property
    def classifies(self) -> bool:
        return self._model.classifies

    @property
    def n_bands(self) -> int:
        return len(self.schema.target_classes) if self.classifies else len(self.bands) + 1

    @property
    def remaining(self) -> int | None:
        return None if self.budget is None else self.budget - self.queries_used

    def band_of(self, values: np.ndarray) -> np.ndarray:
        """Band index of each value (0 = below the first edge); a classifier's class index of each label."""
        if self.classifies:
            return self._model.class_index(values)
        return np.searchsorted(np.asarray(self.bands), values, side="right")

    def query(self, records: pd.DataFrame) -> np.ndarray:
        """Served output per record: values (float; a classifier's probabilities [n, classes])
        or band indices (int; a classifier's class index)."""
        remaining = self.remaining
        if remaining is not None and len(records) > remaining:
            raise QueryBudgetExhausted(len(records), remaining)
        self.queries_used += len(records)
        if self.classifies:
            probabilities = self._model.predict_proba(records)
            return probabilities if self.output == "value" else probabilities.argmax(axis=1)
        values = self._model.predict(records)
        return values if self.output == "value" else self.band_of(values)

    def transform(self, values: np.ndarray) -> np.ndarray:
        """The model's published target transform (e.g. sqrt for dose), for error models."""
        return self._model.transform(values)

    def outcome_features(self, outcome: np.ndarray) -> np.ndarray:
        """A person's outcome as features for a learned attack (see :class:`TabularModel`)."""
        return self._model.outcome_features(outcome)
