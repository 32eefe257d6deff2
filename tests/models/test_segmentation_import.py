"""A segmentation network from its own file and a manifest: TorchScript and ONNX exports of a
mirisk U-Net give the audit the same decoder attack as the mirisk folder, and every bad
manifest or network is refused in one line."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from mirisk.audit.kinds import build_plan, detect_case, load_subject
from mirisk.audit.kinds.segmentation import run_decoder_unit
from mirisk.audit.plan import parse_accesses
from mirisk.errors import MiriskError
from mirisk.models.segmentation_import import MANIFEST_FORMAT, load_manifest_segmenter
from mirisk.models.segmentation_store import load_segmenter

SHAPE = [1, 120, 120]


def export(module: torch.nn.Module, folder: Path, kind: str) -> Path:
    sample = torch.rand(2, *SHAPE)
    if kind == "torchscript":
        path = folder / "unet.pt"
        torch.jit.trace(module, sample).save(str(path))
    else:
        path = folder / "unet.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (sample,), path, dynamo=False, input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    return path


def write_manifest(folder: Path, model_file: Path, target, **overrides) -> Path:
    """A manifest for ``model_file``, an export of the mirisk segmenter ``target``."""
    (folder / "train_ids.txt").write_text("\n".join(target.data["train_subjects"]) + "\n")
    manifest = {"format": MANIFEST_FORMAT, "model": model_file.name, "input_shape": SHAPE, "value_range": [0, 1],
                "classes": list(target.class_names), "outputs": "logits", "images": "bundled:ixi_t1",
                "groups": target.data["groups"], "slices": 1, "train_subjects": "train_ids.txt", **overrides}
    path = folder / "segmenter.json"
    path.write_text(json.dumps(manifest))
    return path


@pytest.fixture(scope="module")
def exported(segmenter_dir, tmp_path_factory) -> dict[str, Path]:
    target = load_segmenter(segmenter_dir)
    manifests = {}
    for kind in ("torchscript", "onnx"):
        folder = tmp_path_factory.mktemp(kind)
        manifests[kind] = write_manifest(folder, export(target.module.eval(), folder, kind), target)
    return manifests


def decoder_results(model: Path, accesses: str) -> list[dict]:
    subject = load_subject(model, None)
    plan = build_plan("segmentation", parse_accesses(accesses), None, {"decoder_epochs": 3, "decoder_subjects": 12})
    results = []
    for unit in plan.units:
        payload, _ = run_decoder_unit(unit, plan.settings, subject.target, subject.slices, True, subject.neighbour_slices)
        results.append(payload)
    return results


def test_exported_networks_get_the_same_decoder_attack_as_the_mirisk_folder(segmenter_dir, exported):
    assert detect_case(exported["onnx"]).name == "segmentation"
    folder = decoder_results(segmenter_dir, "white-box,label-only")
    for kind, manifest in exported.items():
        imported = decoder_results(manifest, "white-box,label-only")
        for own, other in zip(folder, imported, strict=True):
            assert abs(own["metrics"]["ssim_mean"] - other["metrics"]["ssim_mean"]) <= 0.01, kind
            assert (own["metrics"]["reid_top1"], own["metrics"]["reid_top5"]) == (
                other["metrics"]["reid_top1"], other["metrics"]["reid_top5"]), kind
            # onnxruntime's arithmetic differs from torch's in the last bits: near-tied
            # candidates far down the ranking may swap places, nothing more.
            ranks = np.array([own["metrics"]["per_target"]["reid_rank"], other["metrics"]["per_target"]["reid_rank"]])
            assert np.abs(ranks[0] - ranks[1]).max() <= 2, kind
    onnx = load_manifest_segmenter(exported["onnx"])
    assert onnx.architecture == "imported-onnx" and onnx.provenance["gradients"] is False


def test_an_imported_network_is_checked_and_its_dice_measured(segmenter_dir, exported):
    subject = load_subject(exported["torchscript"], None)
    own = load_segmenter(segmenter_dir)
    assert subject.target.metrics["train_dice"] == pytest.approx(own.metrics["train_dice"], abs=0.02)
    assert subject.target.in_channels == 1 and subject.target.outputs == "logits"


def test_a_probability_network_gives_the_white_box_unit_its_log_probabilities(segmenter_dir, tmp_path):
    target = load_segmenter(segmenter_dir)
    softmaxed = torch.nn.Sequential(target.module.eval(), torch.nn.Softmax(dim=1))
    manifest = write_manifest(tmp_path, export(softmaxed, tmp_path, "torchscript"), target, outputs="probs")
    imported = load_manifest_segmenter(manifest)
    scans = torch.rand(2, *SHAPE).numpy()
    np.testing.assert_allclose(torch.softmax(imported.logits(scans), 1), torch.softmax(target.logits(scans), 1),
                               atol=1e-5)
    (payload,) = decoder_results(manifest, "white-box")
    assert payload["threat_model"]["output_type"].startswith("log-probabilities")


@pytest.mark.parametrize("overrides, message", [
    ({"input_shape": [1, 64]}, "input_shape must be [C, H, W]"),
    ({"classes": ["background", "brain"], "groups": None}, "returns outputs of shape [4, 120, 120] per scan"),
    ({"groups": "brain"}, "groups 'brain' must be one of"),
    ({"outputs": "softmax"}, "outputs must be one of logits, probs"),
    ({"colour": "red"}, "unknown field(s) colour"),
    ({"model": "missing.onnx"}, "model not found"),
    ({"train_subjects": "nobody.txt"}, "does not exist"),
])
def test_bad_manifests_are_refused_in_one_line(segmenter_dir, exported, tmp_path, overrides, message):
    target = load_segmenter(segmenter_dir)
    model = tmp_path / "unet.onnx"
    model.write_bytes(exported["onnx"].with_name("unet.onnx").read_bytes())
    manifest = write_manifest(tmp_path, model, target, **overrides)
    with pytest.raises(MiriskError) as refused:
        load_manifest_segmenter(manifest)
    assert message in str(refused.value)


def test_a_pickled_network_is_refused(segmenter_dir, tmp_path):
    target = load_segmenter(segmenter_dir)
    torch.save(target.module, tmp_path / "unet.pt")
    manifest = write_manifest(tmp_path, tmp_path / "unet.pt", target)
    with pytest.raises(MiriskError, match="refusing .*unet.pt: it is a torch.save checkpoint"):
        load_manifest_segmenter(manifest)
