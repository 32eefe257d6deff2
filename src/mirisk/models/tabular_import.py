"""A hospital's own tabular model (a dosing regressor or a risk classifier), audited from its
file and a manifest.

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
predicts the target) or ``sqrt`` (its square root, as the IWPC 2009 dosing algorithm). A
classifier's manifest gives ``classes`` instead: the target's classes in the order of its
probabilities (checked against a scikit-learn model's ``classes_`` and skl2onnx's
probability maps; a bare ONNX probability tensor is taken in that order).

Loading follows the image-model rules: scikit-learn through skops with the trusted-type
list (anything else named and refused), ONNX through onnxruntime, pickles refused. On
import the model is run on a probe table built from the manifest and must return one
finite number per record (a classifier: probabilities that sum to one). Both formats are black-box here: the attribute attacks need only
the model's answers (Fredrikson et al., USENIX Security 2014)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier

from mirisk.data.tabular import TabularSchema
from mirisk.errors import MiriskError
from mirisk.models.imported import detect_format
from mirisk.models.manifest import is_manifest as is_any_manifest
from mirisk.models.manifest import read_fields, read_ids
from mirisk.models.tabular import TabularModel, id_digest
from mirisk.models.tabular_store import load_skops_estimator, load_tabular_target

MANIFEST_FORMAT = "mirisk-tabular-manifest/1"
REQUIRED = ("model", "numeric", "categorical", "target", "id_column")
KNOWN = frozenset({"format", *REQUIRED, "input", "output", "classes", "target_bounds", "train_ids", "train_column",
                   "descriptions"})
INPUTS = ("columns", "one-hot")
OUTPUT_TRANSFORMS = {"target": "identity", "sqrt": "sqrt"}
ONNX_BATCH = 65_536
ONNX_NUMBERS = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
                "tensor(int32)": np.int32}


def is_manifest(path: Path) -> bool:
    """Whether ``path`` is a tabular manifest (a JSON file that says so)."""
    return is_any_manifest(path, MANIFEST_FORMAT)


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest's fields, checked, with the model and id-file paths resolved against its folder."""
    path = Path(path)
    manifest = read_fields(path, MANIFEST_FORMAT, "tabular", REQUIRED, KNOWN)
    for field in ("model", "target", "id_column", "train_ids", "train_column"):
        if field in manifest and not (isinstance(manifest[field], str) and manifest[field]):
            raise MiriskError(f"{path}: {field} must be a name (a non-empty string), got {manifest[field]!r}")
    if ("train_ids" in manifest) == ("train_column" in manifest):
        raise MiriskError(f"{path}: name who the model was trained on with exactly one of train_ids (a file of ids) "
                          "or train_column (a 0/1 column of the data)")
    if manifest.get("input", "columns") not in INPUTS:
        raise MiriskError(f"{path}: input must be one of {', '.join(INPUTS)}, got {manifest.get('input')!r}")
    if manifest.get("output", "target") not in OUTPUT_TRANSFORMS:
        raise MiriskError(f"{path}: output must be one of {', '.join(OUTPUT_TRANSFORMS)}, "
                          f"got {manifest.get('output')!r}")
    classes = manifest.get("classes")
    if classes is not None:
        if not (isinstance(classes, list) and len(classes) >= 2 and len(set(map(str, classes))) == len(classes)):
            raise MiriskError(f"{path}: classes must list the target's classes (at least two, distinct) in the order "
                              f"of the model's probabilities, got {classes!r}")
        if "output" in manifest:
            raise MiriskError(f"{path}: output (the regression target's scale) does not apply to a classifier")
    base = path.parent
    resolved = {**manifest, "model": str((base / str(manifest["model"])).resolve())}
    if "train_ids" in manifest:
        resolved["train_ids"] = read_ids(base / str(manifest["train_ids"]), "record")
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
                                    "descriptions": manifest.get("descriptions", {}),
                                    "target_classes": manifest.get("classes") or ()})


def _skops_predictor(path: Path, schema: TabularSchema, input_kind: str) -> Callable[[pd.DataFrame], np.ndarray]:
    """``predict`` (a classifier's ``predict_proba``, columns in the manifest's class order) of a
    scikit-learn model, fed the columns as a DataFrame or the one-hot matrix."""
    estimator = load_skops_estimator(path, require="predict_proba" if schema.target_classes else "predict")
    if not schema.target_classes and is_classifier(estimator):
        raise MiriskError(f"{path} holds a classifier (classes {[str(c) for c in estimator.classes_][:5]}); name its "
                          "classes in the manifest (\"classes\") so that it is attacked as one")
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
    order = [str(name) for name in names] if names is not None else list(schema.features)
    inputs = ((lambda table: _typed_columns(table, schema)[order]) if input_kind == "columns" else schema.encode)
    if not schema.target_classes:
        return lambda table: estimator.predict(inputs(table))
    columns = _class_columns([str(label) for label in getattr(estimator, "classes_", [])], schema, path)
    return lambda table: estimator.predict_proba(inputs(table))[:, columns]


def _class_columns(model_classes: list[str], schema: TabularSchema, where: Path) -> list[int]:
    """Where each of the manifest's classes is among the model's own, refused if they differ."""
    if sorted(model_classes) != sorted(schema.target_classes):
        raise MiriskError(f"{where} predicts classes {model_classes}; the manifest names {list(schema.target_classes)}")
    return [model_classes.index(label) for label in schema.target_classes]


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
    output, from_maps = _onnx_output(session, schema, path)
    if input_kind == "one-hot":
        if len(inputs) != 1 or next(iter(inputs.values())) not in ONNX_NUMBERS:
            raise MiriskError(f"{path} must take one numeric input for a one-hot manifest; it takes "
                              + ", ".join(f"{name} ({kind})" for name, kind in inputs.items()))
        (name, kind), = inputs.items()
        return lambda table: from_maps(_run_batches(session, output,
                                                    {name: schema.encode(table).astype(ONNX_NUMBERS[kind])}))
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

    return lambda table: from_maps(_run_batches(session, output, feed(table)))


def _onnx_output(session: Any, schema: TabularSchema,
                 path: Path) -> tuple[str, Callable[[list[Any] | np.ndarray], np.ndarray]]:
    """The output to read (a regressor's first; a classifier's probabilities, as a tensor
    [N, classes] in the manifest's class order or as skl2onnx's list of label-to-probability
    maps) and how to turn what it returns into an array."""
    outputs = session.get_outputs()
    maps = [entry for entry in outputs if entry.type.startswith("seq(map(")]
    tensors = [entry for entry in outputs if entry.type in ("tensor(float)", "tensor(double)") and len(entry.shape) == 2]
    if not schema.target_classes:
        if len(outputs) > 1 and (maps or tensors):
            raise MiriskError(f"{path} returns a label and probabilities, as a classifier does; name its classes in "
                              "the manifest (\"classes\") so that it is attacked as one")
        return outputs[0].name, np.asarray
    if maps:
        return maps[0].name, lambda rows: np.array([[float(row[_label_key(row, label)]) for label in
                                                     schema.target_classes] for row in rows]).reshape(-1, len(
                                                         schema.target_classes))
    if tensors:
        return tensors[0].name, np.asarray
    raise MiriskError(f"{path} has no probability output (a float tensor [N, classes] or a sequence of maps); "
                      f"its outputs: {', '.join(f'{entry.name} ({entry.type})' for entry in outputs)}")


def _label_key(row: dict[Any, float], label: str) -> Any:
    """The key of ``label`` in one of skl2onnx's probability maps (its labels may be numbers)."""
    for key in row:
        if str(key) == label:
            return key
    raise MiriskError(f"the ONNX model's probabilities name classes {[str(key) for key in row]}, not {label!r}")


def _run_batches(session: Any, output: str, feed: dict[str, np.ndarray]) -> list[Any] | np.ndarray:
    """The session's output ``output`` over ``feed`` in batches of :data:`ONNX_BATCH` rows."""
    rows = len(next(iter(feed.values())))
    parts: list[Any] = []
    for start in range(0, rows, ONNX_BATCH):
        batch = {name: values[start:start + ONNX_BATCH] for name, values in feed.items()}
        try:
            answer = session.run([output], batch)[0]
        except Exception as error:  # onnxruntime raises its own exception types
            raise MiriskError(f"the ONNX model failed on a batch of records: {str(error).splitlines()[0]}") from None
        if isinstance(answer, list):  # skl2onnx's probability maps: one dict per record
            parts.extend(answer)
        else:
            parts.append(np.asarray(answer))
    if parts and isinstance(parts[0], dict):
        return parts
    return np.concatenate(parts) if parts else np.zeros(0)


def probe_table(schema: TabularSchema) -> pd.DataFrame:
    """One record per value of the widest categorical column, numbers at their bounds' midpoints."""
    rows = max((len(values) for values in schema.categorical.values()), default=2)
    table = {column: np.full(rows, (low + high) / 2) for column, (low, high) in schema.numeric.items()}
    for column, values in schema.categorical.items():
        table[column] = [values[index % len(values)] for index in range(rows)]
    return pd.DataFrame(table)


def _checked(predict: Callable[[pd.DataFrame], np.ndarray], schema: TabularSchema,
             where: Path) -> Callable[[pd.DataFrame], np.ndarray]:
    """``predict`` returning one finite float per record (a classifier: a probability for each
    of its classes), or a one-line error that says what it returned."""
    classes = len(schema.target_classes)
    shape = "a probability for each of its classes" if classes else "one number per record"

    def checked(table: pd.DataFrame) -> np.ndarray:
        try:
            values = np.asarray(predict(table))
        except MiriskError:
            raise
        except Exception as error:  # the user's model may raise anything on a table it rejects
            raise MiriskError(f"{where} failed on the records: {str(error).splitlines()[0]}") from None
        if not classes and values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        expected = (len(table), classes) if classes else (len(table),)
        if values.shape != expected or not np.issubdtype(values.dtype, np.number):
            kind = "classifier" if classes else "regressor"
            raise MiriskError(f"{where} returns {values.dtype} outputs of shape {list(values.shape)} for "
                              f"{len(table)} records; a {kind} returns {shape} (check the manifest's classes)")
        values = values.astype(np.float64)
        bad = ~np.isfinite(values).reshape(len(table), -1).all(axis=1)
        if bad.any():
            raise MiriskError(f"{where} returns non-finite outputs (NaN or inf) for {int(bad.sum())} record(s)")
        if classes and (values.min() < 0 or not np.allclose(values.sum(axis=1), 1.0, atol=1e-3)):
            raise MiriskError(f"{where} returns scores that are not probabilities (each record's must lie in [0, 1] "
                              "and sum to 1); give its probability output")
        return values

    return checked


def load_manifest_model(path: str | Path) -> TabularModel:
    """The regressor or classifier the manifest at ``path`` names, loaded safely and checked on a probe table.
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
    predictor = _checked(build(model_path, schema, input_kind), schema, model_path)
    predictor(probe_table(schema))
    model = TabularModel(schema=schema, kind=f"imported-{fmt}",
                             target_transform=OUTPUT_TRANSFORMS[manifest.get("output", "target")], predictor=predictor)
    model.training = {"imported": {"format": fmt, "file": model_path.name, "manifest": Path(path).name,
                                   "sha256": hashlib.sha256(model_path.read_bytes()).hexdigest(), "input": input_kind,
                                   "train_column": manifest.get("train_column")}, "dp": None}
    if "train_ids" in manifest:
        model.member_digests = frozenset(map(id_digest, manifest["train_ids"]))
        model.training["n_train"] = len(manifest["train_ids"])
    return model


def with_training_column(model: TabularModel, records: pd.DataFrame, where: str) -> pd.DataFrame:
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


def with_measured_fit(model: TabularModel, records: pd.DataFrame, where: str) -> TabularModel:
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
    model.schema.validate(records, (model.schema.target,), what=where)
    truth, predicted = model.recorded_outcome(records), model.predict(records)
    model.metrics["train"] = model.fit_metrics(truth[members], predicted[members])
    if (~members).any():
        model.metrics["test"] = model.fit_metrics(truth[~members], predicted[~members])
    return model


def load_any_tabular(path: str | Path) -> TabularModel:
    """A mirisk tabular model folder, or a manifest naming a tabular model's file."""
    return load_manifest_model(path) if is_manifest(Path(path)) else load_tabular_target(path)
