"""The warfarin case study: train dosing models on IWPC, attack their patients' genotypes,
and sweep differential privacy against dosing utility (Fredrikson et al. 2014)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mirisk.data.iwpc import BUNDLED, DEMOGRAPHICS, IWPC_SCHEMA, CohortSplit, load_iwpc, split_cohort
from mirisk.defences.dp_sgd import DPSettings
from mirisk.errors import MiriskError
from mirisk.models.tabular import TABULAR_DP_CLIP, TabularModel, dosing_metrics, train_tabular_regressor
from mirisk.data.tabular import read_table
from mirisk.models.tabular_import import with_measured_fit, with_training_column
from mirisk.pipelines.attribute import AttributeSetting, held_out_aux, run_attribute_attack

DEFAULT_EPSILONS: tuple[float | None, ...] = (0.1, 0.25, 1.0, 5.0, 20.0, None)
SENSITIVE = ("vkorc1", "cyp2c9")


def train_iwpc_target(
    kind: str = "linear",
    source: str | None = None,
    dp_epsilon: float | None = None,
    dp_delta: float = 1e-5,
    seed: int = 0,
    split: CohortSplit | None = None,
) -> TabularModel:
    """A dosing model on the training patients of the seeded split, with held-out metrics
    and the data provenance the attack needs to rebuild the split."""
    split = split or split_cohort(load_iwpc(source), seed=seed)
    dp = None if dp_epsilon is None else DPSettings(dp_epsilon, dp_delta, TABULAR_DP_CLIP)
    model = train_tabular_regressor(split.train, IWPC_SCHEMA, kind=kind, dp=dp, seed=seed)
    model.metrics["test"] = dosing_metrics(split.test[IWPC_SCHEMA.target].to_numpy(float), model.predict(split.test))
    model.training["data"] = {"source": str(source or BUNDLED), "split_seed": seed,
                              "split": {"train": len(split.train), "aux": len(split.aux), "test": len(split.test)}}
    return model


def recorded_split(model: TabularModel) -> CohortSplit:
    """The IWPC cohort split a mirisk-trained model records in its metadata."""
    data = model.training.get("data") or {}
    if "split_seed" not in data:
        raise MiriskError("this model does not record an IWPC split; pass --data (and --aux) explicitly")
    source = data.get("source")
    return split_cohort(load_iwpc(None if source == BUNDLED else source), seed=int(data["split_seed"]))


def attack_tables(model: TabularModel, data: str | Path | None, aux: str | Path | None,
                  seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The people to attack and the attacker's population sample: the model's own IWPC
    split when no data are named; else ``data`` with ``aux``, or with half of its
    non-training rows as the sample (see :func:`held_out_aux`). An imported model learns
    its training ids from ``data`` if its manifest names a training column, and its error
    on members and others is measured there."""
    if data is None:
        if aux is not None:
            raise MiriskError("--aux needs --data: name the people to attack too")
        split = recorded_split(model)
        return pd.concat([split.train, split.test], ignore_index=True), split.aux
    records = with_training_column(model, read_table(data), str(data))
    if model.predictor is not None:
        with_measured_fit(model, records, str(data))
    if aux is not None:
        return records, read_table(aux)
    model.schema.validate(records, (model.schema.id_column,), what=str(data))
    return held_out_aux(records, model, seed)


def task_columns(model: TabularModel, sensitive: str | None,
                 known: tuple[str, ...] | None) -> tuple[str, tuple[str, ...]]:
    """The column to infer and the known ones; on IWPC the paper's (VKORC1 from the
    demographics), elsewhere the sensitive column must be named and every other feature is known."""
    iwpc = model.schema.as_dict() == IWPC_SCHEMA.as_dict()
    sensitive = sensitive or ("vkorc1" if iwpc else None)
    if sensitive is None:
        raise MiriskError(f"name the column to infer (--sensitive); categorical features: "
                          f"{', '.join(model.schema.categorical)}")
    return sensitive, tuple(known or (DEMOGRAPHICS if iwpc else
                                      (c for c in model.schema.features if c != sensitive)))


def dp_sweep(
    split: CohortSplit,
    epsilons: tuple[float | None, ...] = DEFAULT_EPSILONS,
    repeats: int = 1,
    seed: int = 0,
    on_point: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """For each epsilon (None: non-private least squares), the linear dosing model's utility
    on held-out patients and the Fredrikson attack's accuracy on VKORC1 and CYP2C9, with
    the recorded dose and with the model's own dose as the attacker's outcome; means over
    ``repeats`` seeds (DP training is random)."""
    records = pd.concat([split.train, split.test], ignore_index=True)
    points = []
    for index, epsilon in enumerate(epsilons):
        runs = []
        for repeat in range(repeats if epsilon is not None else 1):
            model = train_iwpc_target("linear", dp_epsilon=epsilon, seed=seed + repeat, split=split)
            run: dict[str, float] = {"mae": model.metrics["test"]["mae"],
                                     "within_20pct": model.metrics["test"]["within_20pct"]}
            if epsilon is not None:
                run["epsilon_spent"] = model.training["dp"]["epsilon"]
            for sensitive in SENSITIVE:
                for outcome in ("true", "model"):
                    metrics = run_attribute_attack(
                        model, records, split.aux, AttributeSetting(sensitive, DEMOGRAPHICS, outcome_source=outcome)
                    ).payload["metrics"]
                    run[f"{sensitive}_{outcome}_train"] = metrics["train"]["accuracy"]
                    run[f"{sensitive}_{outcome}_test"] = metrics["test"]["accuracy"]
                    run[f"{sensitive}_baseline"] = metrics["baseline_accuracy"]
                    run[f"{sensitive}_ideal"] = metrics["train"]["ideal_accuracy"]
            runs.append(run)
        point = {key: float(np.mean([run[key] for run in runs])) for key in runs[0]}
        points.append({"epsilon": epsilon, "epsilon_spent": point.pop("epsilon_spent", None), "repeats": len(runs),
                       **point})
        if on_point is not None:
            on_point(index + 1)
    return points
