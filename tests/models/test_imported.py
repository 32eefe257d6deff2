"""Models trained elsewhere: each safe format loads back equal to the original on real faces,
runs through the attacks its access allows, and unsafe or broken files are refused."""

import zipfile

import numpy as np
import pytest
import skops.io
import torch
from safetensors.torch import save_file
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from mirisk.access.oracle import Oracle
from mirisk.access.policies import parse_policy
from mirisk.access.whitebox import WhiteBoxAccess
from mirisk.attacks.blackbox import ScoreBlackBox
from mirisk.errors import MiriskError
from mirisk.models.imported import ImportSpec, detect_format, import_model
from mirisk.models.loading import load_image_target
from mirisk.pipelines.faces import configured_miface, measure_face_reconstructions

SHAPE = (1, 112, 92)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, targets, faces):
    """The softmax face target in every torch format, plus scikit-learn models on flat pixels."""
    folder = tmp_path_factory.mktemp("exported")
    module = targets["softmax"].module.eval()
    sample = torch.as_tensor(faces.images[:4])
    torch.jit.trace(module, sample).save(folder / "model.pt")
    program = torch.export.export(module, (sample,), dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    torch.export.save(program, folder / "model.pt2")
    torch.onnx.export(module, (sample,), folder / "model.onnx", dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "batch"}})
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, folder / "model.safetensors")
    flat = faces.images.reshape(len(faces.images), -1)
    for name, estimator in (("mlp", MLPClassifier(hidden_layer_sizes=(64,), max_iter=60, random_state=0)),
                            ("logistic", LogisticRegression(max_iter=200)),
                            ("forest", RandomForestClassifier(n_estimators=10, random_state=0))):
        skops.io.dump(estimator.fit(flat, faces.labels), folder / f"{name}.skops")
    return folder


@pytest.mark.parametrize(("name", "fmt", "gradients"), [("model.pt", "torchscript", True), ("model.pt2", "export", True),
                                                        ("model.onnx", "onnx", False)])
def test_torch_formats_load_equal_to_the_original(exported, targets, faces, name, fmt, gradients):
    target = import_model(exported / name, ImportSpec(input_shape=SHAPE if fmt != "onnx" else None))
    assert target.provenance["format"] == fmt and target.gradients is gradients and target.n_classes == 40
    photos = torch.as_tensor(faces.images[::10])
    with torch.no_grad():
        assert torch.allclose(target.module(photos), targets["softmax"].module(photos), atol=1e-4)


def test_safetensors_with_the_users_factory(exported, targets, faces):
    target = import_model(exported / "model.safetensors",
                          ImportSpec(input_shape=SHAPE, arch="tests.models.factories:softmax_faces"))
    photos = torch.as_tensor(faces.images[:8])
    with torch.no_grad():
        assert torch.equal(target.module(photos), targets["softmax"].module(photos))
    with pytest.raises(MiriskError, match="needs --arch"):
        import_model(exported / "model.safetensors", ImportSpec(input_shape=SHAPE))
    with pytest.raises(MiriskError, match="cannot import it"):
        import_model(exported / "model.safetensors", ImportSpec(input_shape=SHAPE, arch="no_such_module:f"))


@pytest.mark.parametrize(("name", "gradients"), [("mlp", True), ("logistic", True), ("forest", False)])
def test_sklearn_models_are_rebuilt_for_gradients_where_possible(exported, faces, name, gradients):
    target = import_model(exported / f"{name}.skops", ImportSpec(input_shape=SHAPE))
    assert target.gradients is gradients
    estimator = skops.io.load(exported / f"{name}.skops", trusted=skops.io.get_untrusted_types(file=exported / f"{name}.skops"))
    photos = faces.images[::20]
    with torch.no_grad():
        probabilities = torch.softmax(target.module(torch.as_tensor(photos)), dim=1).numpy()
    assert np.allclose(probabilities, estimator.predict_proba(photos.reshape(len(photos), -1)), atol=1e-5)
    if gradients:
        assert target.provenance["verified_max_difference"] <= 1e-5


def test_whitebox_miface_runs_on_an_exported_program(exported, faces):
    target = load_image_target(exported / "model.pt2", ImportSpec(input_shape=SHAPE), faces)
    assert target.class_names == faces.class_names  # taken from the data's people
    result = configured_miface(iterations=100).run(WhiteBoxAccess(target), torch.arange(40))
    metrics = measure_face_reconstructions(target, faces, result).metrics
    assert metrics["identification_top1"] > 0.5  # chance 2.5%


def test_onnx_is_black_box_only_and_the_score_attack_works_through_it(exported, faces):
    target = load_image_target(exported / "model.onnx", ImportSpec(), faces)
    with pytest.raises(MiriskError, match="needs gradients"):
        WhiteBoxAccess(target)
    people = torch.arange(0, 40, 4)
    result = ScoreBlackBox(iterations=30).run(Oracle(target, parse_policy("scores")), people)
    metrics = measure_face_reconstructions(target, faces, result).metrics
    assert metrics["identification_top1"] >= 0.3  # 10 people attacked; chance 2.5%


def test_pickles_and_broken_files_are_refused(tmp_path, targets):
    torch.save(targets["softmax"].module.state_dict(), tmp_path / "checkpoint.pt")
    with pytest.raises(MiriskError, match="torch.save checkpoint"):
        detect_format(tmp_path / "checkpoint.pt")
    (tmp_path / "model.pkl").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(MiriskError, match="pickle"):
        detect_format(tmp_path / "model.pkl")
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    with pytest.raises(MiriskError, match="not a loadable ONNX model"):
        import_model(tmp_path / "broken.onnx", ImportSpec(input_shape=SHAPE))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(MiriskError, match="not a model format mirisk can load safely"):
        detect_format(tmp_path / "notes.txt")


def test_an_export_archive_holding_pickled_objects_is_refused(exported, tmp_path):
    tampered = tmp_path / "tampered.pt2"
    with zipfile.ZipFile(exported / "model.pt2") as source, zipfile.ZipFile(tampered, "w") as target:
        for item in source.infolist():
            target.writestr(item, source.read(item))
        target.writestr("model/data/constants/opaque_obj_0", b"\x80\x04K\x01.")
    with pytest.raises(MiriskError, match="holds pickled objects"):
        import_model(tampered, ImportSpec(input_shape=SHAPE))


def test_import_options_are_checked(exported):
    with pytest.raises(MiriskError, match="does not say its input shape"):
        import_model(exported / "model.pt", ImportSpec())
    with pytest.raises(MiriskError, match="does not run on inputs of shape"):
        import_model(exported / "model.pt", ImportSpec(input_shape=(3, 32, 32)))
    with pytest.raises(MiriskError, match="2 class names for a model with 40 outputs"):
        import_model(exported / "model.pt", ImportSpec(input_shape=SHAPE, classes=("a", "b")))
    with pytest.raises(MiriskError, match="--outputs must be"):
        ImportSpec(outputs="scores")
