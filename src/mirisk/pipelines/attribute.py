"""Run an attribute-inference attack end to end and measure it against the baselines,
separately for the model's training records and for held-out records."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mirisk.access.oracle import QueryBudgetExhausted
from mirisk.access.tabular import DOSE_BANDS, TabularOracle
from mirisk.attacks.attribute import ATTACKS, AttributeTask, IdealClassifier, Records, prior_only
from mirisk.errors import MiriskError
from mirisk.metrics.attribute import attribute_metrics
from mirisk.models.tabular import TabularModel
from mirisk.runtime import keeps_caller_generators, prepare_torch, versions
from mirisk.threats import AccessLevel, ThreatModel

OUTCOME_SOURCES = ("true", "model")


@dataclass(frozen=True)
class AttributeSetting:
    """What is attacked and how: the sensitive and known columns, the attack, what the
    model serves, where the attacker's outcome comes from, and the query budget."""

    sensitive: str
    known: tuple[str, ...]
    attack: str = "fredrikson"
    output: str = "value"
    outcome_source: str = "true"
    bands: tuple[float, ...] = DOSE_BANDS
    budget: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.attack not in ATTACKS:
            raise MiriskError(f"unknown attribute attack {self.attack!r}; choose one of {', '.join(ATTACKS)}")
        if self.outcome_source not in OUTCOME_SOURCES:
            raise MiriskError(f"--outcome must be one of {', '.join(OUTCOME_SOURCES)}, got {self.outcome_source!r}")


@dataclass
class AttributeReport:
    """The JSON payload and the per-record inferences (sensitive: owner-only on disk)."""

    payload: dict[str, Any]
    inferences: pd.DataFrame


def held_out_aux(records: pd.DataFrame, model: TabularModel, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """When no auxiliary sample is given: half of the records the model was not trained on
    become the attacker's population sample; the rest (and all members) are attacked."""
    outside = np.flatnonzero(~model.is_member(records[model.schema.id_column]))
    if len(outside) < 20:
        raise MiriskError(
            f"only {len(outside)} record(s) are outside the model's training set; pass --aux with a population "
            "sample of at least 20 records"
        )
    chosen = np.random.default_rng(seed).permutation(outside)[: len(outside) // 2]
    mask = np.zeros(len(records), dtype=bool)
    mask[chosen] = True
    return records[~mask].reset_index(drop=True), records[mask].reset_index(drop=True)


@keeps_caller_generators
def run_attribute_attack(
    model: TabularModel, records: pd.DataFrame, aux: pd.DataFrame, setting: AttributeSetting
) -> AttributeReport:
    """Attack every record in ``records``; ``aux`` is the attacker's population sample."""
    prepare_torch(setting.seed)
    schema = model.schema
    required = (*schema.features, schema.target, schema.id_column)
    schema.validate(records, required, what="data")
    schema.validate(aux, (*schema.features, schema.target), what="auxiliary data")
    task = AttributeTask(schema, setting.sensitive, setting.known)
    oracle = TabularOracle(model, setting.output, setting.bands, setting.budget)
    attack = ATTACKS[setting.attack](task, Records(aux, model.recorded_outcome(aux)))
    started = time.perf_counter()
    outcome = model.recorded_outcome(records) if setting.outcome_source == "true" else model.predict(records)
    try:
        inference = attack.run(oracle, Records(records, outcome))
    except QueryBudgetExhausted as refused:
        raise MiriskError(f"the {setting.attack} attack asks {refused.requested:,} queries at once (every record with "
                          f"each candidate value), past the budget of {setting.budget:,}: no record could be attacked; "
                          "raise the budget or leave it out") from None
    seconds = time.perf_counter() - started

    members = model.is_member(records[schema.id_column])
    ideal_source = records[members] if members.sum() >= 20 else aux
    ideal = IdealClassifier(task, model.outcome_features).fit(ideal_source, model.recorded_outcome(ideal_source))
    ideal_predictions = ideal.predict(records, model.recorded_outcome(records))
    population = IdealClassifier(task, model.outcome_features).fit(aux, model.recorded_outcome(aux))
    population_predictions = population.predict(records, model.recorded_outcome(records))
    baseline = prior_only(aux, setting.sensitive, len(records))
    truth = records[setting.sensitive].astype(str).to_numpy()
    predicted = inference.predictions

    def measured(mask: np.ndarray) -> dict[str, Any]:
        return attribute_metrics(truth[mask], predicted[mask], task.classes, baseline[mask], ideal_predictions[mask],
                                 population_predictions[mask]).to_json()

    metrics = measured(np.ones(len(records), dtype=bool))
    metrics["train"] = measured(members) if members.any() else None
    metrics["test"] = measured(~members) if (~members).any() else None
    access = AccessLevel.SCORES if setting.output == "value" else AccessLevel.LABEL_ONLY
    served = {"value": "probabilities", "band": "label"}[setting.output] if model.classifies else setting.output
    knowledge = (
        f"known columns: {', '.join(setting.known)}",
        f"the person's outcome ({schema.target}): {'recorded value' if setting.outcome_source == 'true' else 'model output'}",
        f"population sample of {len(aux)} records with {setting.sensitive}",
    )
    payload = {
        "attack": setting.attack,
        "threat_model": {**ThreatModel(access, knowledge, setting.budget).as_dict(), "served": served,
                         "bands": list(setting.bands) if served == "band" else None},
        "sensitive": setting.sensitive,
        "classes": list(task.classes),
        "known": list(setting.known),
        "marginalised": list(task.marginalised),
        "outcome_source": setting.outcome_source,
        "queries_used": oracle.queries_used,
        "ideal_trained_on": "training records" if ideal_source is not aux else "auxiliary sample",
        "metrics": metrics,
        "model": {"kind": model.kind, "dp": model.training.get("dp"), "metrics": model.metrics},
        "n_records": len(records),
        "n_aux": len(aux),
        "seconds": seconds,
        "seed": setting.seed,
        "versions": versions(),
    }
    inferences = pd.DataFrame({
        schema.id_column: records[schema.id_column].to_numpy(),
        "in_training": members,
        f"true_{setting.sensitive}": truth,
        f"inferred_{setting.sensitive}": predicted,
        "confidence": inference.posterior.max(axis=1),
    })
    return AttributeReport(payload, inferences)
