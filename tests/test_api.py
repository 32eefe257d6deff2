"""The library entry: `mirisk.audit` on objects in memory writes nothing and agrees with the
CLI; a torch module wrapped by the adapter audits too; saving and resuming; bad input."""

import contextlib
import doctest
import json
import re
import stat
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import mirisk
import mirisk.api
from mirisk import artifacts
from mirisk.cli import app
from mirisk.metrics.judge_cache import CACHE_VARIABLE
from mirisk.models import TargetModel, save_target

runner = CliRunner()
SETTINGS = {"miface_iterations": 150, "blackbox_iterations": 15, "epsilons": [], "policies": [], "baseline": False,
            "people": 10}
TOML = "".join(f"{key} = {json.dumps(value).lower()}\n" for key, value in SETTINGS.items())


@pytest.fixture(scope="module")
def in_memory(targets, tmp_path_factory):
    """The audit of the softmax face model in memory, in an empty working folder, with
    mirisk's evidence writer refused (and the judge's opt-in disk cache off)."""

    def refuse(*args, **kwargs):
        raise AssertionError("an in-memory audit wrote a file")

    empty = tmp_path_factory.mktemp("cwd")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(artifacts, "tempfile", SimpleNamespace(mkstemp=refuse))
        patch.delenv(CACHE_VARIABLE, raising=False)
        patch.chdir(empty)
        report = mirisk.audit(targets["softmax"], "bundled:att_faces", threat_models="white-box,scores",
                              config=SETTINGS)
    assert not list(empty.iterdir())
    return report


def test_an_in_memory_audit_agrees_with_the_cli(in_memory, targets, tmp_path_factory):
    folder = tmp_path_factory.mktemp("api")
    model = save_target(targets["softmax"], folder / "model")
    (folder / "audit.toml").write_text(TOML)
    result = runner.invoke(app, ["audit", "--model", str(model), "--out", str(folder / "cli"), "--config",
                                 str(folder / "audit.toml"), "--access", "white-box,scores"])
    assert result.exit_code == 0, result.output
    cli = json.loads((folder / "cli" / "report.json").read_text())
    assert in_memory.verdict == cli["verdict"]["overall"] and in_memory.document["verdict"] == cli["verdict"]

    def evidence(report):
        return [{key: value for key, value in attack.items() if key != "seconds"} for attack in report["attacks"]]

    assert evidence(in_memory.to_json()) == evidence(cli)
    assert in_memory.document["recommendations"] == cli["recommendations"]
    assert in_memory.document["defences"] == cli["defences"]
    # the white-box attack re-identifies far above chance on this memorising model
    white = in_memory.results["white-box-miface"].metrics
    assert white["reid_top1"] >= white["chance_top1"] + 0.3


def test_saving_writes_a_resumable_owner_only_folder(in_memory, targets, tmp_path):
    out = in_memory.save(tmp_path / "saved")
    assert json.loads((out / "report.json").read_text())["verdict"] == in_memory.document["verdict"]
    assert "<img" in (out / "report.html").read_text()
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in out.rglob("*") if path.is_file())
    (out / "report.json").unlink()  # as if stopped before the report: every attack is found done
    resumed = []
    again = mirisk.audit(targets["softmax"], "bundled:att_faces", threat_models="white-box,scores", config=SETTINGS,
                         out=out, on_unit=lambda unit, done: resumed.append(done))
    assert resumed == [True, True, True] and again.document["verdict"] == in_memory.document["verdict"]
    assert (out / "report.json").is_file()


def test_a_torch_module_wrapped_by_the_adapter_audits(faces):
    torch.manual_seed(0)
    module = nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(faces.input_shape)), faces.n_classes))
    optimiser = torch.optim.Adam(module.parameters(), 1e-3)
    images, labels = torch.as_tensor(faces.images), torch.as_tensor(faces.labels)
    for _ in range(60):
        optimiser.zero_grad()
        nn.functional.cross_entropy(module(images), labels).backward()
        optimiser.step()
    model = mirisk.ImageClassifier.from_module(module, input_shape=faces.input_shape, classes=faces.class_names)
    report = mirisk.audit(model, (faces.images, faces.labels), threat_models=[mirisk.AccessLevel.WHITE_BOX],
                          config=SETTINGS)
    metrics = report.results["white-box-miface"].metrics
    assert metrics["reid_gallery"].startswith("all photos")  # the split of a module handed in is unknown
    assert "baseline unavailable" in report.by_threat_model["white-box"]["reason"]
    assert metrics["reid_top1"] >= metrics["chance_top1"] + 0.3 and report.verdict != "low"
    assert report.document["model"]["architecture"] == "module-Sequential"


@pytest.mark.parametrize(("call", "message"), [
    (lambda faces: mirisk.audit(object(), None), "cannot audit a object"),
    (lambda faces: mirisk.audit("no/such/model", None), "model not found"),
    (lambda faces: mirisk.ImageClassifier.from_module(nn.Linear(3, 2), input_shape=(1, 8, 8), classes=("a", "b")),
     "does not run on inputs of shape"),
    (lambda faces: mirisk.ImageClassifier.from_module(nn.Flatten(), input_shape=(1, 2, 2), classes=("a", "b")),
     "4 outputs"),
    (lambda faces: mirisk.ImageClassifier.from_module("not a module", input_shape=(1, 2, 2), classes=("a",)),
     "expected a torch.nn.Module"),
    (lambda faces: mirisk.api.audit_config({"budgett": 3}), "unknown setting.*budgett"),
    (lambda faces: mirisk.api.accesses_of([3]), "a threat model is a string"),
    (lambda faces: mirisk.api.image_data((faces.images[0], faces.labels), None), "arrays must be"),
])
def test_bad_input_is_refused_in_one_line(faces, call, message):
    with pytest.raises(mirisk.MiriskError, match=message):
        call(faces)


def _small() -> TargetModel:
    return mirisk.ImageClassifier.from_module(nn.Sequential(nn.Flatten(), nn.Linear(64, 3)), input_shape=(1, 8, 8),
                                              classes=("ann", "bob", "cy"))


def _oracle(budget=None) -> mirisk.Oracle:
    return mirisk.Oracle(_small(), mirisk.parse_policy("scores"), budget=budget)


# Wrong values and wrong types at the public entry points: each a MiriskError of one line
# naming the problem, before any work (these raised TypeError, ValueError or AttributeError,
# or were accepted, before 2026-12-07).
WRONG_CALLS = {
    "audit: data given as a number": (lambda: mirisk.audit(_small(), 123), "an image classifier's data is"),
    "audit: a budget of nan": (lambda: mirisk.audit(_small(), budget=float("nan")), "budget must be a whole number"),
    "audit: a budget of inf": (lambda: mirisk.audit(_small(), budget=float("inf")), "budget must be a whole number"),
    "audit: a budget of True": (lambda: mirisk.audit(_small(), budget=True), "budget must be a whole number"),
    "audit: a budget of 2.5": (lambda: mirisk.audit(_small(), budget=2.5), "budget must be a whole number"),
    "audit: a budget of 0": (lambda: mirisk.audit(_small(), budget=0), "budget must be at least 1"),
    "audit: redact as text": (lambda: mirisk.audit(_small(), redact="yes"), "redact must be true or false"),
    "audit: force as a number": (lambda: mirisk.audit(_small(), force=1), "force must be true or false"),
    "audit: a config given as a number": (lambda: mirisk.audit(_small(), config=5), "the config is given as a path"),
    "audit: a missing config file": (lambda: mirisk.audit(_small(), config="no/such.toml"), "config file not found"),
    "audit: the ray backend named as text": (lambda: mirisk.audit(_small(), backend="ray"), "backend is a mirisk.execution.backends backend"),
    "audit: out given as a number": (lambda: mirisk.audit(_small(), out=5), "out is given as a path"),
    "audit: on_unit that is not a function": (lambda: mirisk.audit(_small(), on_unit=5), "on_unit must be a function"),
    "audit: known columns as a number": (lambda: mirisk.audit("no/such/model", known=5), "known must be a list"),
    "audit: threat models as a number": (lambda: mirisk.audit(_small(), threat_models=5),
                                         "threat models are strings, AccessLevels or ThreatModels"),
    "audit: an unknown threat model": (lambda: mirisk.audit(_small(), threat_models="grey-box"),
                                       "unknown access level"),
    "from_module: classes of None": (lambda: mirisk.ImageClassifier.from_module(
        nn.Flatten(), input_shape=(1, 8, 8), classes=None), "classes must be a list or tuple"),
    "from_module: repeated class names": (lambda: mirisk.ImageClassifier.from_module(
        nn.Sequential(nn.Flatten(), nn.Linear(64, 3)), input_shape=(1, 8, 8), classes=("a", "a", "b")),
        "class names must differ; repeated: a"),
    "from_module: the input shape as text": (lambda: mirisk.ImageClassifier.from_module(
        nn.Flatten(), input_shape="1,8,8", classes=("a", "b")), "input_shape must be a list or tuple"),
    "from_module: a negative side": (lambda: mirisk.ImageClassifier.from_module(
        nn.Flatten(), input_shape=(1, -8, 8), classes=("a", "b")), "the input shape must be C,H,W"),
    "from_module: a value range of one number": (lambda: mirisk.ImageClassifier.from_module(
        nn.Flatten(), input_shape=(1, 8, 8), classes=("a", "b"), value_range=(1,)), "--value-range must be"),
    "from_module: a mean as text": (lambda: mirisk.ImageClassifier.from_module(
        nn.Flatten(), input_shape=(1, 8, 8), classes=("a", "b"), mean="x", std=(1.0,)), "mean must be a list"),
    "load: a path of None": (lambda: mirisk.ImageClassifier.load(None), "the model is given as a path"),
    "load: an unknown import option": (lambda: mirisk.ImageClassifier.load("m.onnx", bogus=1),
                                       "unknown import option"),
    "load_model: a path given as a number": (lambda: mirisk.load_model(5), "the model is given as a path"),
    "Oracle: a budget of nan": (lambda: _oracle(float("nan")), "budget must be a whole number"),
    "Oracle: a negative budget": (lambda: _oracle(-1), "budget must be at least 0"),
    "Oracle: a policy as text": (lambda: mirisk.Oracle(_small(), "scores"), "the oracle's policy is an OutputPolicy"),
    "Oracle: a query of NaN": (lambda: _oracle(5).query(torch.full((1, 1, 8, 8), float("nan"))),
                               "NaN or infinite values; nothing was answered or charged"),
    "parse_policy: a number": (lambda: mirisk.parse_policy(5), "an output policy is written as text"),
    "MIFace: iterations of nan": (lambda: mirisk.MIFace(iterations=float("nan")), "iterations must be a whole number"),
    "MIFace: iterations as text": (lambda: mirisk.MIFace(iterations="5"), "iterations must be a whole number"),
    "MIFace: a learning rate of 1e308": (lambda: mirisk.MIFace(learning_rate=1e308), "within float32's range"),
    "ScoreBlackBox: samples as text": (lambda: mirisk.ScoreBlackBox(samples="a"), "samples must be a whole number"),
    "BoundaryRepulsion: iterations as text": (lambda: mirisk.BoundaryRepulsion(iterations="a"),
                                              "iterations must be a whole number"),
    "AccessLevel: an unknown level": (lambda: mirisk.AccessLevel("grey-box"), "unknown access level 'grey-box'"),
    "ThreatModel: a budget of nan": (lambda: mirisk.ThreatModel("scores", (), float("nan")),
                                     "budget must be a whole number"),
}


@pytest.mark.parametrize("name", list(WRONG_CALLS))
def test_wrong_values_and_types_at_the_public_entry_points_get_one_line(name):
    call, message = WRONG_CALLS[name]
    with pytest.raises(mirisk.MiriskError, match=re.escape(message)) as refused:
        call()
    assert "\n" not in str(refused.value)


def test_a_refused_nan_query_is_not_charged():
    oracle = _oracle(5)
    with pytest.raises(mirisk.MiriskError):
        oracle.query(torch.full((2, 1, 8, 8), float("inf")))
    assert oracle.queries_used == 0 and oracle.remaining == 5


def test_load_model_reads_every_kind_the_cli_takes(targets, segmenter_dir, tmp_path):
    folder = save_target(targets["softmax"], tmp_path / "softmax")
    assert mirisk.load_model(folder).class_names == targets["softmax"].class_names
    assert mirisk.load_model(segmenter_dir).data["train_subjects"]
    with pytest.raises(mirisk.MiriskError, match="import options are for image model files"):
        mirisk.load_model(segmenter_dir, input_shape=(1, 2, 2))


def test_the_docstring_examples_run():
    assert doctest.testmod(mirisk.api, raise_on_error=False).failed == 0


def test_a_model_handed_in_as_an_object_is_not_sent_to_a_remote_backend(targets):
    class Remote:
        name, cpus_per_task, in_process = "ray", 1, False

        def threads(self):
            return contextlib.nullcontext()

        def map(self, task, items, on_result=None):
            raise AssertionError("nothing may be sent")

    with pytest.raises(mirisk.MiriskError, match="handed in as an object: save it first"):
        mirisk.audit(targets["softmax"], "bundled:att_faces", threat_models="white-box", config=SETTINGS,
                     backend=Remote())


def test_a_tabular_model_in_memory_audits_as_the_cli_does_on_the_same_tables(iwpc_linear, iwpc_split, tmp_path):
    from mirisk.models.tabular_store import save_tabular_target

    records = pd.concat([iwpc_split.train[:300], iwpc_split.test[:100]], ignore_index=True)
    aux = iwpc_split.aux[:300].reset_index(drop=True)
    report = mirisk.audit(iwpc_linear, records, aux=aux, threat_models="scores,label-only",
                          config={"epsilons": []})
    model = save_tabular_target(iwpc_linear, tmp_path / "model")
    records.to_csv(tmp_path / "records.csv", index=False)
    aux.to_csv(tmp_path / "aux.csv", index=False)
    from_files = mirisk.audit(model, tmp_path / "records.csv", aux=tmp_path / "aux.csv",
                              threat_models="scores,label-only", config={"epsilons": []})
    assert report.verdict == from_files.verdict and report.document["verdict"] == from_files.document["verdict"]
    for unit_id, result in report.results.items():
        assert result.metrics == from_files.results[unit_id].metrics
    assert report.results["scores-fredrikson"].metrics["train"]["n"] == 300  # the members among the records
    with pytest.raises(mirisk.MiriskError, match="pandas DataFrame"):
        mirisk.audit(iwpc_linear, tmp_path / "records.csv")


def test_a_segmenter_in_memory_audits_as_its_folder_does(segmenter_dir):
    settings = {"decoder_epochs": 3}
    from_folder = mirisk.audit(segmenter_dir, threat_models="label-only", config=settings)
    segmenter = mirisk.load_model(segmenter_dir)
    in_memory = mirisk.audit(segmenter, threat_models="label-only", config=settings)
    assert in_memory.verdict == from_folder.verdict
    assert in_memory.results["label-only-decoder"].metrics == from_folder.results["label-only-decoder"].metrics
    # slices handed in are checked for the training patients, and no neighbouring slices are assumed
    from mirisk.audit.kinds.segmentation import load_segmentation_data

    slices = load_segmentation_data(segmenter, None)
    handed = mirisk.audit(segmenter, slices, threat_models="label-only", config=settings)
    neighbour = handed.results["label-only-decoder"].metrics["reid_neighbour"]
    assert not neighbour["available"] and "handed in memory" in neighbour["reason"]
    others = slices.of_subjects([s for s in slices.subjects if s not in segmenter.data["train_subjects"]])
    with pytest.raises(mirisk.MiriskError, match="lack 8 of the model's training subjects"):
        mirisk.audit(segmenter, others, threat_models="label-only", config=settings)
    with pytest.raises(mirisk.MiriskError, match="apply to tabular models"):
        mirisk.audit(segmenter, aux="aux.csv")


def test_a_federated_round_in_memory_audits_as_its_folder_does(faces, tmp_path):
    from mirisk.models.architectures import build_model
    from mirisk.fl.simulation import simulate_round
    from mirisk.pipelines.federated import downscaled

    small = downscaled(faces, 2)
    torch.manual_seed(0)
    module = build_model("lenet", small.input_shape, small.n_classes)
    record = simulate_round(module, torch.as_tensor(small.images[[0, 10]]), torch.as_tensor(small.labels[[0, 10]]),
                            "lenet", small.n_classes)
    settings = {"gradient_attacks": ["idlg"], "gradient_iterations": 60, "gradient_restarts": 1}
    in_memory = mirisk.audit(record, faces, config=settings)  # the photos pooled to the round's 56 x 46
    folder = record.save(tmp_path / "round")
    from_folder = mirisk.audit(folder, "bundled:att_faces", config=settings)
    assert in_memory.verdict == from_folder.verdict
    assert in_memory.results["white-box-idlg"].metrics == from_folder.results["white-box-idlg"].metrics
    with pytest.raises(mirisk.MiriskError, match="replayed on stand-in images"):
        mirisk.audit(record, faces.images)
