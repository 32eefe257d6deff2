"""Black-box access to a tabular regression model (a dosing model), with output restriction.

``value``: the model's prediction as served (e.g. the weekly dose in mg).
``band``: only the band the prediction falls in (e.g. low / intermediate / high dose), the
regression analogue of serving labels only. Every record asked about is one query."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mirisk.access.oracle import QueryBudgetExhausted
from mirisk.errors import MiriskError
from mirisk.models.tabular import TabularRegressor

OUTPUTS = ("value", "band")
# IWPC 2009 reported accuracy separately for patients needing <= 21 mg/week (low) and
# >= 49 mg/week (high); the same cut points make the three served bands.
DOSE_BANDS = (21.0, 49.0)


class RegressionOracle:
    """Answers records with the model's value or its band; counts queries against a budget."""

    def __init__(self, model: TabularRegressor, output: str = "value", bands: tuple[float, ...] = DOSE_BANDS,
                 budget: int | None = None) -> None:
        if output not in OUTPUTS:
            raise MiriskError(f"unknown regression output {output!r}; choose one of {', '.join(OUTPUTS)}")
        if budget is not None and budget < 0:
            raise MiriskError(f"the query budget must be >= 0, got {budget}")
        if list(bands) != sorted(bands) or not bands:
            raise MiriskError(f"band edges must be increasing, got {list(bands)}")
        self._model = model
        self.schema = model.schema
        self.output = output
        self.bands = tuple(float(edge) for edge in bands)
        self.budget = budget
        self.queries_used = 0

    @property
    def n_bands(self) -> int:
        return len(self.bands) + 1

    @property
    def remaining(self) -> int | None:
        return None if self.budget is None else self.budget - self.queries_used

    def band_of(self, values: np.ndarray) -> np.ndarray:
        """Band index of each value (0 = below the first edge)."""
        return np.searchsorted(np.asarray(self.bands), values, side="right")

    def query(self, records: pd.DataFrame) -> np.ndarray:
        """Served output per record: values (float) or band indices (int)."""
        remaining = self.remaining
        if remaining is not None and len(records) > remaining:
            raise QueryBudgetExhausted(len(records), remaining)
        self.queries_used += len(records)
        values = self._model.predict(records)
        return values if self.output == "value" else self.band_of(values)

    def transform(self, values: np.ndarray) -> np.ndarray:
        """The model's published target transform (e.g. sqrt for dose), for error models."""
        return self._model.transform(values)
