"""Attribute inference by model inversion: recover a record's sensitive column (a genotype)
from a regression model's answers plus the record's other, known columns.

Threat model (all attacks here): black-box query access to the model, served as values
(the dose) or only as bands (output restriction); the attacker knows the target person's
``known`` columns and their observed outcome (the stable dose, or the model's recommended
dose for them), and holds an auxiliary sample of the same population with the sensitive
column (population statistics). It never sees the training data or the model's internals.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import logsumexp
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mirisk.access.tabular import TabularOracle
from mirisk.data.tabular import TabularSchema
from mirisk.errors import MiriskError


LEARNED_TOLERANCE = 1e-8
PROBABILITY_FLOOR = 1e-6  # a served probability of 0 would rule a candidate out for good


@dataclass(frozen=True)
class AttributeTask:
    """Which column is sensitive and which columns the attacker knows; every other
    categorical feature is unknown too and is summed out over its population prior."""

    schema: TabularSchema
    sensitive: str
    known: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.sensitive not in self.schema.categorical:
            raise MiriskError(
                f"sensitive column {self.sensitive!r} must be a categorical model feature; "
                f"categorical features: {', '.join(self.schema.categorical)}"
            )
        if self.sensitive in self.known:
            raise MiriskError(f"the sensitive column {self.sensitive!r} cannot also be known")
        self.schema.subset(self.known)
        unknown_numeric = [column for column in self.schema.numeric if column not in self.known]
        if unknown_numeric:
            raise MiriskError(
                f"numeric feature(s) {', '.join(unknown_numeric)} must be known to the attacker "
                "(only categorical columns can be summed out)"
            )

    @property
    def classes(self) -> tuple[str, ...]:
        return self.schema.categorical[self.sensitive]

    @property
    def marginalised(self) -> tuple[str, ...]:
        return tuple(c for c in self.schema.categorical if c != self.sensitive and c not in self.known)

    def candidate_grid(self) -> pd.DataFrame:
        """Every combination of the sensitive value (slowest) and the unknown columns' values."""
        columns = (self.sensitive, *self.marginalised)
        rows = itertools.product(*(self.schema.categorical[column] for column in columns))
        return pd.DataFrame(list(rows), columns=list(columns))

    def candidates_for(self, records: pd.DataFrame) -> pd.DataFrame:
        """[n * G] rows: each record's known columns beside every candidate combination."""
        grid = self.candidate_grid()
        known = records[list(self.known)].reset_index(drop=True)
        expanded = known.loc[known.index.repeat(len(grid))].reset_index(drop=True)
        tiled = pd.concat([grid] * len(records), ignore_index=True)
        return pd.concat([expanded, tiled], axis=1)


@dataclass(frozen=True)
class Records:
    """People as table rows and each one's observed outcome (the stable dose, or the model's
    answer for them): the attacker's auxiliary sample, or the targets whose sensitive value
    it infers."""

    table: pd.DataFrame
    outcome: np.ndarray

    def __post_init__(self) -> None:
        if len(self.table) != len(self.outcome):
            raise MiriskError(f"{len(self.table)} records but {len(self.outcome)} outcomes")


@dataclass
class AttributeInference:
    """Posterior over the sensitive values for each target, its arg-max, and the queries
    spent on the targets (those spent on the auxiliary sample are not counted here)."""

    classes: tuple[str, ...]
    posterior: np.ndarray
    queries_used: int

    @property
    def predictions(self) -> np.ndarray:
        return np.asarray(self.classes, dtype=object)[self.posterior.argmax(axis=1)]


def _responses(task: AttributeTask, oracle: TabularOracle, records: pd.DataFrame) -> np.ndarray:
    """The oracle's answer for every candidate of every record, [n, G] (a classifier's
    probabilities: [n, G, classes])."""
    answers = np.asarray(oracle.query(task.candidates_for(records)))
    return answers.reshape(len(records), -1, *answers.shape[1:])


def _observed_log_probability(served: np.ndarray, outcome_index: np.ndarray) -> np.ndarray:
    """log p(observed class | candidate) from a classifier's probabilities [n, G, classes]."""
    chosen = np.take_along_axis(served, outcome_index[:, None, None], axis=2)[..., 0]
    return np.log(np.clip(chosen, PROBABILITY_FLOOR, 1.0))


def _priors(task: AttributeTask, aux: pd.DataFrame, smoothing: float) -> np.ndarray:
    """Log prior of every grid row: product of the columns' smoothed marginal frequencies
    in the auxiliary sample (columns assumed independent, as in Fredrikson et al.)."""
    grid = task.candidate_grid()
    log_prior = np.zeros(len(grid))
    for column in grid.columns:
        values = task.schema.categorical[column]
        counts = aux[column].astype(str).value_counts().reindex(values, fill_value=0).to_numpy(float) + smoothing
        log_prior += np.log(counts / counts.sum())[pd.Categorical(grid[column], categories=values).codes]
    return log_prior


@dataclass(frozen=True)
class FredriksonInversion:
    """Model inversion of Fredrikson et al., "Privacy in Pharmacogenetics: An End-to-End
    Case Study of Personalized Warfarin Dosing", USENIX Security 2014.

    Scores each candidate sensitive value v by p(observed outcome | model(known, v, c)) *
    p(v) * p(c), summed over the unknown columns c, and returns the normalised posterior.
    The priors and the outcome model come from the auxiliary sample ``aux``: the outcome
    model is Gaussian on the model's transformed scale with the model's error (standard
    deviation) when values are served; when only bands are served it is the band confusion
    P(true band | served band) (the label-only variant). For a classifier serving
    probabilities it is the model's own probability of the observed class (as Fredrikson,
    Jha & Ristenpart, CCS 2015, invert a classifier's confidences); serving labels, the
    class confusion as for bands. Threat model: see the module docstring."""

    name = "fredrikson"
    task: AttributeTask
    aux: Records = field(compare=False, repr=False)
    smoothing: float = 1.0

    def run(self, oracle: TabularOracle, targets: Records, *, generator: object = None,
            progress: Callable[[int], None] | None = None) -> AttributeInference:
        """The posterior of every target's sensitive value. Deterministic: ``generator`` is
        taken for the contract."""
        log_prior = _priors(self.task, self.aux.table, self.smoothing)
        served_aux = oracle.query(self.aux.table)
        start = oracle.queries_used
        served = _responses(self.task, oracle, targets.table)
        observed = oracle.band_of(targets.outcome)
        if oracle.output == "value" and oracle.classifies:
            log_likelihood = _observed_log_probability(served, observed)
        elif oracle.output == "value":
            sigma = float(np.std(oracle.transform(self.aux.outcome) - oracle.transform(served_aux))) or 1e-6
            log_likelihood = -0.5 * ((oracle.transform(targets.outcome)[:, None] - oracle.transform(served)) / sigma) ** 2
        else:
            counts = np.full((oracle.n_bands, oracle.n_bands), self.smoothing)
            np.add.at(counts, (served_aux, oracle.band_of(self.aux.outcome)), 1.0)
            log_confusion = np.log(counts / counts.sum(axis=1, keepdims=True))
            log_likelihood = log_confusion[served, observed[:, None]]
        joint = (log_likelihood + log_prior[None, :]).reshape(len(targets.table), len(self.task.classes), -1)
        log_posterior = logsumexp(joint, axis=2)
        posterior = np.exp(log_posterior - logsumexp(log_posterior, axis=1, keepdims=True))
        return AttributeInference(self.task.classes, posterior, oracle.queries_used - start)


@dataclass(frozen=True)
class LearnedAttributeAttack:
    """A learned black-box attack: a classifier trained on the auxiliary sample to map a
    person's known columns, their outcome and the model's answers for every candidate
    value to their sensitive value (the shadow-data approach of learned inversion attacks,
    e.g. Yang et al., "Neural Network Inversion in Adversarial Setting via Background
    Knowledge Alignment", ACM CCS 2019, here on tabular outputs). Works with values or
    bands served. Threat model: see the module docstring."""

    name = "learned"
    task: AttributeTask
    aux: Records = field(compare=False, repr=False)

    def _features(self, oracle: TabularOracle, records: Records) -> np.ndarray:
        served = _responses(self.task, oracle, records.table)
        observed = oracle.band_of(records.outcome)
        if oracle.output == "value" and oracle.classifies:
            relative = _observed_log_probability(served, observed)
        elif oracle.output == "value":
            relative = oracle.transform(served) - oracle.transform(records.outcome)[:, None]
        elif oracle.classifies:
            relative = (served == observed[:, None]).astype(float)
        else:
            relative = (served - observed[:, None]).astype(float)
        known = self.task.schema.subset(self.task.known).encode(records.table)
        return np.hstack([known, oracle.outcome_features(records.outcome), relative])

    def run(self, oracle: TabularOracle, targets: Records, *, generator: object = None,
            progress: Callable[[int], None] | None = None) -> AttributeInference:
        """The posterior of every target's sensitive value. The solver is deterministic:
        ``generator`` is taken for the contract."""
        labels = self.aux.table[self.task.sensitive].astype(str)
        if labels.nunique() < 2:
            raise MiriskError(f"the auxiliary sample holds one value of {self.task.sensitive!r} only; cannot learn")
        # Solved to a tight tolerance: at the default (1e-4) the fit, and so a few borderline
        # records, moved with the model's last float digits (an ONNX copy of a model in float32
        # differed by two patients of 2,805; at 1e-8 by none).
        classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, tol=LEARNED_TOLERANCE))
        classifier.fit(self._features(oracle, self.aux), labels)
        start = oracle.queries_used
        probabilities = classifier.predict_proba(self._features(oracle, targets))
        columns = list(classifier.classes_)
        posterior = np.zeros((len(targets.table), len(self.task.classes)))
        for index, value in enumerate(self.task.classes):
            if value in columns:
                posterior[:, index] = probabilities[:, columns.index(value)]
        return AttributeInference(self.task.classes, posterior, oracle.queries_used - start)


class IdealClassifier:
    """Baseline without the model: a classifier trained on the training records themselves
    (known columns + outcome -> sensitive), the "ideal" predictor of Fredrikson et al. 2014.
    What the model leaks beyond this is leakage the data alone would not give."""

    name = "ideal"

    def __init__(self, task: AttributeTask, outcome_features: Callable[[np.ndarray], np.ndarray]) -> None:
        self.task = task
        self._outcome_features = outcome_features
        self._known_schema = task.schema.subset(task.known)
        self._classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))

    def _features(self, records: pd.DataFrame, outcome: np.ndarray) -> np.ndarray:
        return np.hstack([self._known_schema.encode(records), self._outcome_features(outcome)])

    def fit(self, records: pd.DataFrame, outcome: np.ndarray) -> IdealClassifier:
        self._classifier.fit(self._features(records, outcome), records[self.task.sensitive].astype(str))
        return self

    def predict(self, records: pd.DataFrame, outcome: np.ndarray) -> np.ndarray:
        return self._classifier.predict(self._features(records, outcome))


def prior_only(aux: pd.DataFrame, sensitive: str, n: int) -> np.ndarray:
    """Baseline: the most common value in the population sample, for everyone."""
    return np.full(n, aux[sensitive].astype(str).mode().iloc[0], dtype=object)


ATTACKS = {FredriksonInversion.name: FredriksonInversion, LearnedAttributeAttack.name: LearnedAttributeAttack}
