"""A hospital's own tabular model (regressor or classifier), audited from a skops or ONNX file plus a manifest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from mirisk.data.iwpc import DEMOGRAPHICS, IWPC_SCHEMA
from mirisk.errors import MiriskError
from mirisk.models.tabular_import import load_manifest_model
from mirisk.pipelines.attribute import AttributeSetting, run_attribute_attack
from mirisk.pipelines.iwpc import attack_tables
from tests.tabular_files import BAND, BAND_CLASSES, SCHEMA, write_tabular_manifest as write_manifest


def classifier_manifest(folder: Path, model: str, **fields) -> Path:
    """A manifest for the dose-band classifier: its classes instead of a regression output."""
    return write_manifest(folder, model, **({"output": None, "target": BAND, "target_bounds": None,
                                            "classes": BAND_CLASSES} | fields))


def attacked(manifest: Path, data: Path, attack: str = "fredrikson", output: str = "value") -> dict:
    model = load_manifest_model(manifest)
    records, population = attack_tables(model, data, None, seed=0)
    setting = AttributeSetting("vkorc1", DEMOGRAPHICS, attack=attack, output=output)
    return run_attribute_attack(model, records, population, setting).payload


@pytest.mark.parametrize("attack,output", [("fredrikson", "value"), ("fredrikson", "band"), ("learned", "value")])
def test_skops_and_onnx_copies_give_the_same_inference_within_one_patient(hospital_tabular, attack, output):
    results = [attacked(write_manifest(hospital_tabular, name), hospital_tabular / "patients.csv", attack, output)
               for name in ("dose.skops", "dose.onnx")]
    for part in ("train", "test"):
        skops_result, onnx_result = (result["metrics"][part] for result in results)
        correct = [round(result["accuracy"] * result["n"]) for result in (skops_result, onnx_result)]
        assert skops_result["n"] == onnx_result["n"] and abs(correct[0] - correct[1]) <= 1
    # the model leaks: on its training patients the attack beats the population prior
    assert results[0]["metrics"]["train"]["accuracy"] > results[0]["metrics"]["baseline_accuracy"] + 0.1


@pytest.mark.parametrize("attack,output", [("fredrikson", "value"), ("fredrikson", "band"), ("learned", "value"),
                                           ("learned", "band")])
def test_a_classifiers_skops_and_onnx_copies_give_the_same_inference(hospital_tabular, attack, output):
    results = [attacked(classifier_manifest(hospital_tabular, name), hospital_tabular / "patients.csv", attack,
                        output) for name in ("band.skops", "band.onnx")]
    for part in ("train", "test"):
        correct = [round(result["metrics"][part]["accuracy"] * result["metrics"][part]["n"]) for result in results]
        assert abs(correct[0] - correct[1]) <= 1
    served = results[0]["threat_model"]["served"]
    assert served == ("probabilities" if output == "value" else "label")
    train = results[0]["metrics"]["train"]
    assert train["accuracy"] > train["baseline_accuracy"] + 0.05


def test_a_classifiers_probabilities_leak_more_than_its_labels(hospital_tabular):
    manifest = classifier_manifest(hospital_tabular, "band.onnx")
    scores, labels = (attacked(manifest, hospital_tabular / "patients.csv", "fredrikson", output)["metrics"]["train"]
                      for output in ("value", "band"))
    assert scores["accuracy"] > labels["accuracy"]


def test_a_classifier_is_checked_against_its_manifest(hospital_tabular):
    model = load_manifest_model(classifier_manifest(hospital_tabular, "band.skops"))
    assert model.classifies and model.schema.target_classes == tuple(BAND_CLASSES)
    reordered = load_manifest_model(classifier_manifest(hospital_tabular, "band.onnx",
                                                        classes=["low", "intermediate", "high"]))
    table = pd.read_csv(hospital_tabular / "patients.csv").head(50)
    assert np.allclose(reordered.predict_proba(table)[:, ::-1], model.predict_proba(table), atol=1e-5)
    assert (reordered.predict(table) == model.predict(table)).all()
    with pytest.raises(MiriskError, match="predicts classes"):
        load_manifest_model(classifier_manifest(hospital_tabular, "band.skops", classes=["low", "high"]))
    with pytest.raises(MiriskError, match="does not apply to a classifier"):
        load_manifest_model(classifier_manifest(hospital_tabular, "band.skops", output="target"))
    with pytest.raises(MiriskError, match="outside the model's classes"):
        bad = table.assign(**{BAND: "very high"})
        model.schema.validate(bad, (BAND,))


def test_imported_model_is_measured_on_its_own_training_patients(hospital_tabular, iwpc_split):
    model = load_manifest_model(write_manifest(hospital_tabular, "dose.onnx"))
    records, population = attack_tables(model, hospital_tabular / "patients.csv", None, seed=0)
    assert model.kind == "imported-onnx" and model.training["imported"]["input"] == "columns"
    assert model.is_member(records[IWPC_SCHEMA.id_column]).sum() == len(iwpc_split.train)
    assert not model.is_member(population[IWPC_SCHEMA.id_column]).any()
    # boosted trees fit their training patients better than the others
    assert model.metrics["train"]["mae"] < model.metrics["test"]["mae"]


def test_a_training_column_replaces_the_id_file_and_is_hidden_from_the_attack(hospital_tabular, iwpc_split, tmp_path):
    table = pd.read_csv(hospital_tabular / "patients.csv", dtype={IWPC_SCHEMA.id_column: str})
    table["in_training"] = table[IWPC_SCHEMA.id_column].isin(iwpc_split.train[IWPC_SCHEMA.id_column]).astype(int)
    table.to_csv(tmp_path / "flagged.csv", index=False)
    manifest = write_manifest(hospital_tabular, "dose.skops", train_ids=None, train_column="in_training")
    model = load_manifest_model(manifest)
    records, _ = attack_tables(model, tmp_path / "flagged.csv", None, seed=0)
    assert "in_training" not in records.columns and model.training["n_train"] == len(iwpc_split.train)


def test_one_hot_input_to_an_onnx_matrix_model(hospital_tabular, iwpc_split):
    from skl2onnx import to_onnx

    encoded = IWPC_SCHEMA.encode(iwpc_split.train)
    model = GradientBoostingRegressor(n_estimators=50, random_state=0).fit(encoded, iwpc_split.train[IWPC_SCHEMA.target])
    (hospital_tabular / "matrix.onnx").write_bytes(to_onnx(model, encoded[:1].astype(np.float32), target_opset=17)
                                           .SerializeToString())
    imported = load_manifest_model(write_manifest(hospital_tabular, "matrix.onnx", input="one-hot", output="target"))
    expected = model.predict(IWPC_SCHEMA.encode(iwpc_split.test))
    assert np.allclose(imported.predict(iwpc_split.test), expected, rtol=1e-4, atol=1e-3)


def halve(values):
    return values / 2


def test_bad_manifests_and_models_get_one_line_errors(hospital_tabular, iwpc_split, tmp_path):
    def refused(match: str, **fields) -> None:
        with pytest.raises(MiriskError, match=match) as caught:
            load_manifest_model(write_manifest(hospital_tabular, fields.pop("model", "dose.skops"), **fields))
        assert "\n" not in str(caught.value)

    refused("unknown field", colour="red")
    refused("exactly one of train_ids", train_column="in_training")
    refused("input must be one of", input="pixels")
    refused("needs bounds", numeric=SCHEMA["numeric"] | {"age_decades": [9, 1]})
    refused("at least two distinct values", categorical=SCHEMA["categorical"] | {"amiodarone": ["0"]})
    refused("cannot be both a model feature", numeric=SCHEMA["numeric"] | {"dose_mg_week": [0, 400]})
    fewer = {name: bounds for name, bounds in SCHEMA["numeric"].items() if name != "weight_kg"}
    refused("not in the manifest: weight_kg", numeric=fewer)
    refused("no input for bmi", model="dose.onnx", numeric=SCHEMA["numeric"] | {"bmi": [10, 60]})
    (hospital_tabular / "dose.pkl").write_bytes(b"\x80\x04")
    refused("unpickling can run arbitrary code", model="dose.pkl")
    skops.io.dump(make_pipeline(FunctionTransformer(halve)), hospital_tabular / "custom.skops")
    refused("not on mirisk's trusted list", model="custom.skops")
    refused("does not exist", train_ids="nobody.txt")


def test_a_model_that_is_not_a_regressor_or_returns_nan_is_refused(hospital_tabular, iwpc_split):
    from sklearn.linear_model import LinearRegression, LogisticRegression

    features = iwpc_split.train[list(IWPC_SCHEMA.features)]
    categories = ColumnTransformer([("c", OneHotEncoder(), list(IWPC_SCHEMA.categorical))], remainder="passthrough")
    high_dose = (iwpc_split.train[IWPC_SCHEMA.target] > 35).map({True: "high", False: "low"})
    classifier = make_pipeline(categories, StandardScaler(), LogisticRegression()).fit(features, high_dose)
    (hospital_tabular / "classifier.skops").write_bytes(skops.io.dumps(classifier))
    with pytest.raises(MiriskError, match="holds a classifier"):
        load_manifest_model(write_manifest(hospital_tabular, "classifier.skops"))
    with pytest.raises(MiriskError, match="returns a label and probabilities"):  # the band classifier, as a regressor
        load_manifest_model(write_manifest(hospital_tabular, "band.onnx"))
    broken = LinearRegression().fit(IWPC_SCHEMA.encode(iwpc_split.train), iwpc_split.train[IWPC_SCHEMA.target])
    broken.coef_[0] = np.nan
    (hospital_tabular / "broken.skops").write_bytes(skops.io.dumps(broken))
    with pytest.raises(MiriskError, match="non-finite outputs"):
        load_manifest_model(write_manifest(hospital_tabular, "broken.skops", input="one-hot"))


def test_training_ids_absent_from_the_data_are_refused(hospital_tabular, iwpc_split, tmp_path):
    others = pd.concat([iwpc_split.aux, iwpc_split.test], ignore_index=True)
    others.to_csv(tmp_path / "others.csv", index=False)
    model = load_manifest_model(write_manifest(hospital_tabular, "dose.skops"))
    with pytest.raises(MiriskError, match="none of the model's .* training ids"):
        attack_tables(model, tmp_path / "others.csv", None, seed=0)
