"""A hospital's own tabular regressor (a dosing or risk score), audited from its file and a manifest.

The manifest (JSON, ``"format": "mirisk-tabular-manifest/1"``) is what the audit is pointed
at (``mirisk audit --model dose.json --data patients.csv``). It names the model file and
says what the file cannot: the feature columns with their types (numeric with plausible
bounds, categorical with their values, the first being the reference level), the target
column and what the model outputs of it, the id column, and who the model was trained on
(a text file of ids, one per line, or a 0/1 column of the data)::

    {"format": "mirisk-tabular-manifest/1", "model": "dose.onnx", "input": "columns",
     "output": "target", "numeric": {"age_decades": [1, 9], "weight_kg": [20, 250]},
     "categorical": {"vkorc1": ["G/G", "A/G", "A/A"], "race": ["white", "asian", "black"]},
     "target": "dose_mg_week", "target_bounds": [0, 400], "id_column": "patient_id",
     "train_ids": "train_ids.txt"}

``input``: ``columns`` (the model takes the named columns themselves: a DataFrame for a
scikit-learn model, one ``[N, 1]`` input per column for ONNX, strings for categories) or
``one-hot`` (one float matrix: the numeric columns, then each categorical column one-hot
without its reference level, in the manifest's order). ``output``: ``target`` (the model
predicts the target) or ``sqrt`` (its square root, as the IWPC 2009 dosing algorithm).

Loading follows the image-model rules: scikit-learn through skops with the trusted-type
list (anything else named and refused), ONNX through onnxruntime, pickles refused. On
import the model is run on a probe table built from the manifest and must return one
finite number per record. Both formats are black-box here: the attribute attacks need only
the model's answers (Fredrikson et al., USENIX Security 2014)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mirisk.artifacts import read_json
from mirisk.data.tabular import TabularSchema
from mirisk.errors import MiriskError
from mirisk.models.imported import detect_format
from mirisk.models.tabular import TabularRegressor, dosing_metrics, id_digest
from mirisk.models.tabular_store import load_skops_estimator, load_tabular_target

MANIFEST_FORMAT = "mirisk-tabular-manifest/1"
REQUIRED = ("model", "numeric", "categorical", "target", "id_column")
KNOWN = frozenset({"format", *REQUIRED, "input", "output", "target_bounds", "train_ids", "train_column",
                   "descriptions"})
INPUTS = ("columns", "one-hot")
OUTPUT_TRANSFORMS = {"target": "identity", "sqrt": "sqrt"}
ONNX_BATCH = 65_536
ONNX_NUMBERS = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
                "tensor(int32)": np.int32}


def is_manifest(path: Path) -> bool:
    """Whether ``path`` is a tabular manifest (a JSON file that says so)."""
    if not (path.is_file() and path.suffix == ".json"):
        return False
    try:
        found = read_json(path)
    except MiriskError:
        return False
    return isinstance(found, dict) and found.get("format") == MANIFEST_FORMAT


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest's fields, checked, with the model and id-file paths resolved against its folder."""
    path = Path(path)
    manifest = read_json(path)
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise MiriskError(f"{path} is not a tabular manifest (\"format\": \"{MANIFEST_FORMAT}\")")
    unknown, missing = sorted(set(manifest) - KNOWN), [key for key in REQUIRED if key not in manifest]
    if unknown or missing:
        raise MiriskError(f"{path}: " + "; ".join(filter(None, [
            f"unknown field(s) {', '.join(unknown)}" if unknown else "",
            f"missing field(s) {', '.join(missing)}" if missing else ""])))
    if ("train_ids" in manifest) == ("train_column" in manifest):
        raise MiriskError(f"{path}: name who the model was trained on with exactly one of train_ids (a file of ids) "
                          "or train_column (a 0/1 column of the data)")
    if manifest.get("input", "columns") not in INPUTS:
        raise MiriskError(f"{path}: input must be one of {', '.join(INPUTS)}, got {manifest.get('input')!r}")
    if manifest.get("output", "target") not in OUTPUT_TRANSFORMS:
        raise MiriskError(f"{path}: output must be one of {', '.join(OUTPUT_TRANSFORMS)}, "
                          f"got {manifest.get('output')!r}")
    base = path.parent
    resolved = {**manifest, "model": str((base / str(manifest["model"])).resolve())}
    if "train_ids" in manifest:
        resolved["train_ids"] = _train_ids(base / str(manifest["train_ids"]))
    return resolved


def manifest_schema(manifest: dict[str, Any], where: str) -> TabularSchema:
    """The manifest's columns as a schema, each bound and category list checked."""
    numeric, categorical = manifest["numeric"], manifest["categorical"]
    if not isinstance(numeric, dict) or not isinstance(categorical, dict) or not (numeric or categorical):
        raise MiriskError(f"{where}: numeric and categorical must map column names to bounds and to values")
    for name, bounds in numeric.items():
        if not (isinstance(bounds, list) and len(bounds) == 2 and all(isinstance(v, int | float) for v in bounds)
                and bounds[0] < bounds[1]):
            raise MiriskError(f"{where}: numeric column {name!r} needs bounds [low, high] with low < high, "
                              f"got {bounds!r}")
    for name, values in categorical.items():
        if not (isinstance(values, list) and len(values) >= 2 and len(set(map(str, values))) == len(values)):
            raise MiriskError(f"{where}: categorical column {name!r} needs a list of at least two distinct values, "
                              f"got {values!r}")
    overlap = sorted(set(numeric) & set(categorical))
    if overlap:
        raise MiriskError(f"{where}: column(s) {', '.join(overlap)} are both numeric and categorical")
    reserved = {str(manifest["target"]), str(manifest["id_column"]), str(manifest.get("train_column"))}
    clash = sorted(reserved & (set(numeric) | set(categorical)))
    if clash:
        raise MiriskError(f"{where}: column(s) {', '.join(clash)} cannot be both a model feature and the target, "
                          "id or training column")
    return TabularSchema.from_dict({"numeric": numeric, "categorical": categorical, "target": manifest["target"],
                                    "id_column": manifest["id_column"],
                                    "target_bounds": manifest.get("target_bounds", (0.0, 1.0)),
                                    "descriptions": manifest.get("descriptions", {})})


def _train_ids(path: Path) -> list[str]:
    if not path.is_file():
        raise MiriskError(f"the manifest's training-id file {path} does not exist")
    ids = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not ids or len(set(ids)) != len(ids):
        raise MiriskError(f"{path} must list each training record's id once, one per line")
    return ids


def _skops_predictor(path: Path, schema: TabularSchema, input_kind: str) -> Callable[[pd.DataFrame], np.ndarray]:
    """``predict`` of a scikit-learn model, fed the columns as a DataFrame or the one-hot matrix."""
    estimator = load_skops_estimator(path)
    expected = list(schema.features) if input_kind == "columns" else schema.encoded_names
    names = getattr(estimator, "feature_names_in_", None)
    if input_kind == "columns" and names is not None and set(map(str, names)) != set(expected):
        missing, extra = sorted(set(expected) - set(map(str, names))), sorted(set(map(str, names)) - set(expected))
        raise MiriskError(f"{path} was fitted on columns that differ from the manifest's: "
                          + "; ".join(filter(None, [f"not in the model: {', '.join(missing)}" if missing else "",
                                                    f"not in the manifest: {', '.join(extra)}" if extra else ""])))
    count = getattr(estimator, "n_features_in_", None)
    if count is not None and count != len(expected):
        raise MiriskError(f"{path} takes {count} features; the manifest's {input_kind} input has {len(expected)}")
    if input_kind == "columns":
        order = [str(name) for name in names] if names is not None else list(schema.features)
        return lambda table: estimator.predict(_typed_columns(table, schema)[order])
    return lambda table: estimator.predict(schema.encode(table))


def _typed_columns(table: pd.DataFrame, schema: TabularSchema) -> pd.DataFrame:
    """The feature columns with numbers as floats and categories as text, as the schema reads them."""
    return pd.DataFrame({column: table[column].to_numpy(dtype=np.float64) if column in schema.numeric
                         else table[column].astype(str).to_numpy() for column in schema.features})


def _onnx_predictor(path: Path, schema: TabularSchema, input_kind: str) -> Callable[[pd.DataFrame], np.ndarray]:
    """An onnxruntime session fed one input per column, or the one-hot matrix as its only input."""
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types
        raise MiriskError(f"{path} is not a loadable ONNX model: {str(error).splitlines()[0]}") from None
    inputs = {entry.name: entry.type for entry in session.get_inputs()}
    output = session.get_outputs()[0].name
    if input_kind == "one-hot":
        if len(inputs) != 1 or next(iter(inputs.values())) not in ONNX_NUMBERS:
            raise MiriskError(f"{path} must take one numeric input for a one-hot manifest; it takes "
                              + ", ".join(f"{name} ({kind})" for name, kind in inputs.items()))
        (name, kind), = inputs.items()
        return lambda table: _run_batches(session, output, {name: schema.encode(table).astype(ONNX_NUMBERS[kind])})
    missing, extra = sorted(set(schema.features) - set(inputs)), sorted(set(inputs) - set(schema.features))
    if missing or extra:
        raise MiriskError(f"{path}'s inputs differ from the manifest's columns: " + "; ".join(filter(None, [
            f"no input for {', '.join(missing)}" if missing else "",
            f"inputs not in the manifest: {', '.join(extra)}" if extra else ""])))
    for column in schema.numeric:
        if inputs[column] not in ONNX_NUMBERS:
            raise MiriskError(f"{path}: numeric column {column!r} goes to an input of type {inputs[column]}")

    def feed(table: pd.DataFrame) -> dict[str, np.ndarray]:
        typed = _typed_columns(table, schema)
        return {column: (typed[[column]].to_numpy(dtype=ONNX_NUMBERS[kind]) if kind in ONNX_NUMBERS
                         else typed[[column]].to_numpy(dtype=object)) for column, kind in inputs.items()}

    return lambda table: _run_batches(session, output, feed(table))


def _run_batches(session: Any, output: str, feed: dict[str, np.ndarray]) -> np.ndarray:
    """The session's first output over ``feed`` in batches of :data:`ONNX_BATCH` rows."""
    rows = len(next(iter(feed.values())))
    parts = []
    for start in range(0, rows, ONNX_BATCH):
        batch = {name: values[start:start + ONNX_BATCH] for name, values in feed.items()}
        try:
            parts.append(np.asarray(session.run([output], batch)[0]))
        except Exception as error:  # onnxruntime raises its own exception types
            raise MiriskError(f"the ONNX model failed on a batch of records: {str(error).splitlines()[0]}") from None
    return np.concatenate(parts) if parts else np.zeros(0)


def probe_table(schema: TabularSchema) -> pd.DataFrame:
    """One record per value of the widest categorical column, numbers at their bounds' midpoints."""
    rows = max((len(values) for values in schema.categorical.values()), default=2)
    table = {column: np.full(rows, (low + high) / 2) for column, (low, high) in schema.numeric.items()}
    for column, values in schema.categorical.items():
        table[column] = [values[index % len(values)] for index in range(rows)]
    return pd.DataFrame(table)


def _checked(predict: Callable[[pd.DataFrame], np.ndarray], where: Path) -> Callable[[pd.DataFrame], np.ndarray]:
    """``predict`` returning one finite float per record, or a one-line error that says what it returned."""

    def checked(table: pd.DataFrame) -> np.ndarray:
        try:
            values = np.asarray(predict(table))
        except MiriskError:
            raise
        except Exception as error:  # the user's model may raise anything on a table it rejects
            raise MiriskError(f"{where} failed on the records: {str(error).splitlines()[0]}") from None
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.shape != (len(table),) or not np.issubdtype(values.dtype, np.number):
            raise MiriskError(f"{where} returns {values.dtype} outputs of shape {list(values.shape)} for "
                              f"{len(table)} records; a regressor returns one number per record (classifiers "
                              "are not audited yet)")
        values = values.astype(np.float64)
        if not np.isfinite(values).all():
            raise MiriskError(f"{where} returns non-finite outputs (NaN or inf) for "
                              f"{int((~np.isfinite(values)).sum())} record(s)")
        return values

    return checked


def load_manifest_regressor(path: str | Path) -> TabularRegressor:
    """The regressor the manifest at ``path`` names, loaded safely and checked on a probe table.
    With ``train_column``, its training ids come from the data: see :func:`with_training_column`."""
    manifest = read_manifest(path)
    schema = manifest_schema(manifest, str(path))
    model_path = Path(manifest["model"])
    fmt = detect_format(model_path)
    if fmt not in ("skops", "onnx"):
        raise MiriskError(f"{model_path} is a {fmt} file; a tabular model is audited from scikit-learn saved with "
                          "skops (.skops) or ONNX (.onnx)")
    input_kind = manifest.get("input", "columns")
    build = _skops_predictor if fmt == "skops" else _onnx_predictor
    predictor = _checked(build(model_path, schema, input_kind), model_path)
    predictor(probe_table(schema))
    model = TabularRegressor(schema=schema, kind=f"imported-{fmt}",
                             target_transform=OUTPUT_TRANSFORMS[manifest.get("output", "target")], predictor=predictor)
    model.training = {"imported": {"format": fmt, "file": model_path.name, "manifest": Path(path).name,
                                   "sha256": hashlib.sha256(model_path.read_bytes()).hexdigest(), "input": input_kind,
                                   "train_column": manifest.get("train_column")}, "dp": None}
    if "train_ids" in manifest:
        model.member_digests = frozenset(map(id_digest, manifest["train_ids"]))
        model.training["n_train"] = len(manifest["train_ids"])
    return model


def with_training_column(model: TabularRegressor, records: pd.DataFrame, where: str) -> pd.DataFrame:
    """For a manifest with ``train_column``: the model's training ids from that 0/1 column of
    ``records``; the records are returned without it (the attack never sees it)."""
    column = model.training.get("imported", {}).get("train_column")
    if column is None:
        return records
    if column not in records.columns:
        raise MiriskError(f"{where} lacks the training column {column!r} the manifest names")
    flags = records[column].astype(str).str.strip().str.lower()
    bad = sorted(set(flags) - {"0", "1", "true", "false"})
    if bad:
        raise MiriskError(f"{where}: training column {column!r} must hold 0/1 or true/false, found {bad[:3]}")
    members = flags.isin(["1", "true"]).to_numpy()
    model.member_digests = frozenset(map(id_digest, records.loc[members, model.schema.id_column]))
    model.training["n_train"] = int(members.sum())
    return records.drop(columns=[column])


def with_measured_fit(model: TabularRegressor, records: pd.DataFrame, where: str) -> TabularRegressor:
    """An imported model's error on its training records and on the others, measured on the
    audit's data (mirisk's own models record theirs at training); refused when none of its
    training ids is in the data (there would be no training record to measure leakage on)."""
    members = model.is_member(records[model.schema.id_column])
    if not members.any():
        raise MiriskError(f"none of the model's {model.training.get('n_train', 0)} training ids is in {where}'s "
                          f"column {model.schema.id_column!r}; the audit measures what the model leaks about its "
                          "training records, so the data must hold some of them")
    missing = model.training.get("n_train", 0) - int(members.sum())
    model.training["training_ids_not_in_data"] = max(missing, 0)
    truth = records[model.schema.target].to_numpy(dtype=np.float64)
    predicted = model.predict(records)
    model.metrics["train"] = dosing_metrics(truth[members], predicted[members])
    if (~members).any():
        model.metrics["test"] = dosing_metrics(truth[~members], predicted[~members])
    return model


def load_any_tabular(path: str | Path) -> TabularRegressor:
    """A mirisk tabular model folder, or a manifest naming a tabular model's file."""
    return load_manifest_regressor(path) if is_manifest(Path(path)) else load_tabular_target(path)
