"""Save and load tabular models without pickle: a linear model is JSON coefficients; a
tree ensemble is a skops file, loaded only when every type in it is on an explicit,
shown trusted list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mirisk.artifacts import open_private, prepare_output_dir, read_json, write_json
from mirisk.data.tabular import TabularSchema
from mirisk.errors import MiriskError
from mirisk.models.tabular import KINDS, TabularModel

FORMAT = "mirisk-tabular/1"
METADATA = "target.json"
ESTIMATOR = "model.skops"
# scikit-learn's own helper types that skops asks about (tree structures, the MLP's fitted
# optimiser state); anything else in a file is refused and named.
TRUSTED_SKOPS_TYPES = (
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
)


def save_tabular_target(model: TabularModel, directory: str | Path, force: bool = False) -> Path:
    """Write ``target.json`` (and ``model.skops`` for tree models), owner-only."""
    import skops.io

    directory = prepare_output_dir(directory, force=force)
    payload: dict[str, Any] = {
        "format": FORMAT,
        "kind": model.kind,
        "schema": model.schema.as_dict(),
        "target_transform": model.target_transform,
        "training": model.training,
        "metrics": model.metrics,
        "member_digests": sorted(model.member_digests),
    }
    if model.kind == "linear":
        payload["linear"] = {"coefficients": model.coefficients.tolist(), "intercept": model.intercept,
                             "feature_names": model.schema.encoded_names}
    else:
        with open_private(directory / ESTIMATOR, binary=True) as handle:
            handle.write(skops.io.dumps(model.estimator))
        payload["estimator"] = ESTIMATOR
    write_json(directory / METADATA, payload)
    return directory


def load_tabular_target(path: str | Path) -> TabularModel:
    """Load a folder written by :func:`save_tabular_target`, never unpickling anything."""
    path = Path(path)
    metadata_path = path / METADATA
    if not metadata_path.is_file():
        raise MiriskError(f"{path} is not a mirisk model folder (no {METADATA}) nor a tabular manifest "
                          "(docs/own-models.md)")
    payload = read_json(metadata_path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else None
        raise MiriskError(f"{path} holds a {found or 'non-mirisk'} model; attribute attacks need a tabular model "
                          f"({FORMAT}, e.g. from `mirisk train iwpc`)")
    if payload.get("kind") not in KINDS:
        raise MiriskError(f"{metadata_path}: unknown model kind {payload.get('kind')!r}")
    model = TabularModel(
        schema=TabularSchema.from_dict(payload.get("schema", {})),
        kind=payload["kind"],
        target_transform=payload.get("target_transform", "sqrt"),
        training=payload.get("training", {}),
        metrics=payload.get("metrics", {}),
        member_digests=frozenset(payload.get("member_digests", [])),
    )
    if model.kind == "linear":
        try:
            model.coefficients = np.asarray(payload["linear"]["coefficients"], dtype=np.float64)
            model.intercept = float(payload["linear"]["intercept"])
        except (KeyError, TypeError, ValueError) as error:
            raise MiriskError(f"{metadata_path}: malformed linear coefficients ({error!r})") from None
        if model.coefficients.shape != (len(model.schema.encoded_names),):
            raise MiriskError(f"{metadata_path}: {model.coefficients.size} coefficients for "
                              f"{len(model.schema.encoded_names)} encoded features")
    else:
        model.estimator = load_skops_estimator(path / payload.get("estimator", ESTIMATOR))
    return model


def load_skops_estimator(path: Path, require: str = "predict") -> Any:
    """A scikit-learn estimator from a skops file, refused if the file holds any type off
    :data:`TRUSTED_SKOPS_TYPES` (scikit-learn's own estimators are trusted by skops) or if
    the object lacks the method ``require``."""
    import skops.io

    if not path.is_file():
        raise MiriskError(f"model file missing: {path}")
    try:
        untrusted = skops.io.get_untrusted_types(file=path)
    except Exception as error:  # skops raises several types for a file that is not its format
        raise MiriskError(f"{path} is not a readable skops file: {error}") from None
    refused = sorted(set(untrusted) - set(TRUSTED_SKOPS_TYPES))
    if refused:
        raise MiriskError(f"{path} contains types not on mirisk's trusted list: {', '.join(refused)}; "
                          f"trusted: {', '.join(TRUSTED_SKOPS_TYPES)}")
    estimator = skops.io.load(path, trusted=list(untrusted))
    if not callable(getattr(estimator, require, None)):
        raise MiriskError(f"{path} holds a {type(estimator).__name__}, which has no {require}()")
    return estimator
