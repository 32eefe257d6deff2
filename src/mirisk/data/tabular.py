"""Tabular records: a schema naming each column's type, and its one encoding into numbers.

A model trained by mirisk on a table and the attacks against it share one
:class:`TabularSchema`, so a record is always turned into the same feature vector."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mirisk.errors import MiriskError


@dataclass(frozen=True)
class TabularSchema:
    """Numeric columns with their plausible bounds, categorical columns with their values
    (the first one is the reference level, encoded as all zeros), the target (a number with
    ``target_bounds`` for a regressor; one of ``target_classes``, in the model's order, for a
    classifier) and the column that identifies a record's person."""

    numeric: dict[str, tuple[float, float]]
    categorical: dict[str, tuple[str, ...]]
    target: str
    id_column: str
    target_bounds: tuple[float, float] = (0.0, 1.0)
    descriptions: dict[str, str] = field(default_factory=dict)
    target_classes: tuple[str, ...] = ()

    @property
    def features(self) -> tuple[str, ...]:
        return (*self.numeric, *self.categorical)

    @property
    def encoded_names(self) -> list[str]:
        names = list(self.numeric)
        for column, values in self.categorical.items():
            names += [f"{column}={value}" for value in values[1:]]
        return names

    def encoded_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bound of every encoded feature (one-hot columns: 0 and 1)."""
        lower = [bounds[0] for bounds in self.numeric.values()]
        upper = [bounds[1] for bounds in self.numeric.values()]
        n_dummies = sum(len(values) - 1 for values in self.categorical.values())
        return np.array(lower + [0.0] * n_dummies), np.array(upper + [1.0] * n_dummies)

    def subset(self, columns: tuple[str, ...]) -> TabularSchema:
        """The same encoding restricted to ``columns`` (in the schema's own order)."""
        unknown = [column for column in columns if column not in self.features]
        if unknown:
            raise MiriskError(f"column(s) {', '.join(unknown)} are not model features; features: {', '.join(self.features)}")
        return TabularSchema(
            numeric={name: bounds for name, bounds in self.numeric.items() if name in columns},
            categorical={name: values for name, values in self.categorical.items() if name in columns},
            target=self.target, id_column=self.id_column, target_bounds=self.target_bounds,
            descriptions=self.descriptions, target_classes=self.target_classes,
        )

    def validate(self, table: pd.DataFrame, columns: tuple[str, ...] | None = None, what: str = "data") -> None:
        """Raise a one-line error for a missing column, a non-numeric, missing or infinite
        value, a category the schema does not know, or a record id given twice; warn of
        numeric values outside the range the model was trained on."""
        columns = self.features if columns is None else columns
        missing = [column for column in columns if column not in table.columns]
        if missing:
            raise MiriskError(f"{what} lacks column(s) {', '.join(missing)}; it has {', '.join(map(str, table.columns))}")
        if self.id_column in table.columns:
            repeated = table[self.id_column][table[self.id_column].duplicated()].astype(str).unique()
            if len(repeated):
                raise MiriskError(f"{what}: {len(repeated)} id(s) in column {self.id_column!r} appear more than once "
                                  f"(e.g. {', '.join(repeated[:3])}); each record must appear once, or it is "
                                  "attacked and counted twice")
        for column in columns:
            if column == self.target and self.target_classes:
                unknown = sorted(set(table[column].astype(str)) - set(self.target_classes))
                if unknown:
                    raise MiriskError(f"{what}: target column {column!r} has value(s) {unknown[:5]} outside the "
                                      f"model's classes {list(self.target_classes)}")
            elif column in self.numeric or column == self.target:
                values = pd.to_numeric(table[column], errors="coerce")
                bad = int(values.isna().sum())
                if bad:
                    raise MiriskError(f"{what}: column {column!r} has {bad} missing or non-numeric value(s)")
                infinite = int(np.isinf(values).sum())
                if infinite:
                    raise MiriskError(f"{what}: column {column!r} has {infinite} infinite value(s)")
                low, high = self.numeric.get(column, (-np.inf, np.inf))
                outside = int(((values < low) | (values > high)).sum())
                if outside:
                    warnings.warn(f"{what}: column {column!r} has {outside} value(s) outside the range the model "
                                  f"was trained on [{low:g}, {high:g}]; its answers there are extrapolation",
                                  stacklevel=2)
            elif column in self.categorical:
                unknown = sorted(set(table[column].astype(str)) - set(self.categorical[column]))
                if unknown:
                    raise MiriskError(
                        f"{what}: column {column!r} has value(s) {unknown[:5]} outside the model's "
                        f"categories {list(self.categorical[column])}"
                    )

    def encode(self, table: pd.DataFrame) -> np.ndarray:
        """Feature matrix [n, n_encoded]: numeric columns as they are, categories one-hot."""
        self.validate(table)
        parts = [table[list(self.numeric)].to_numpy(dtype=np.float64)]
        for column, values in self.categorical.items():
            codes = pd.Categorical(table[column].astype(str), categories=list(values)).codes
            parts.append((codes[:, None] == np.arange(1, len(values))[None, :]).astype(np.float64))
        return np.concatenate(parts, axis=1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "numeric": {name: list(bounds) for name, bounds in self.numeric.items()},
            "categorical": {name: list(values) for name, values in self.categorical.items()},
            "target": self.target,
            "id_column": self.id_column,
            "target_bounds": list(self.target_bounds),
            "descriptions": self.descriptions,
        } | ({"target_classes": list(self.target_classes)} if self.target_classes else {})

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> TabularSchema:
        try:
            return cls(
                numeric={name: (float(lo), float(hi)) for name, (lo, hi) in payload["numeric"].items()},
                categorical={name: tuple(map(str, values)) for name, values in payload["categorical"].items()},
                target=str(payload["target"]),
                id_column=str(payload["id_column"]),
                target_bounds=tuple(map(float, payload.get("target_bounds", (0.0, 1.0)))),
                descriptions=dict(payload.get("descriptions", {})),
                target_classes=tuple(map(str, payload.get("target_classes", ()))),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise MiriskError(f"malformed tabular schema: {error!r}") from None


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV file (optionally gzip-compressed) with every column as text or number."""
    path = Path(path)
    if not path.is_file():
        raise MiriskError(f"table not found: {path}")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as error:
        raise MiriskError(f"{path} is not a readable CSV table: {error}") from None
    if table.empty:
        raise MiriskError(f"{path} has no rows")
    return table
