"""Auditing a segmenter: the scans it was trained on, and one decoder attack per output type."""

import json

import pytest

from mirisk.audit.kinds import build_plan
from mirisk.audit.plan import parse_accesses
from mirisk.redaction import pseudonym
from mirisk.audit.kinds.segmentation import load_segmentation_data, run_decoder_unit, segmentation_source
from mirisk.data.mri import load_neighbour_slices
from mirisk.errors import MiriskError
from mirisk.models.segmentation_store import load_segmenter


def test_the_recorded_scans_are_loaded_and_must_hold_the_training_patients(segmenter_dir, tmp_path):
    target = load_segmenter(segmenter_dir)
    slices = load_segmentation_data(target, None)
    assert set(target.data["train_subjects"]) < set(slices.subjects)
    target.data["train_subjects"] = [*target.data["train_subjects"], "IXI999-nobody"]
    with pytest.raises(MiriskError, match="lack 1 of the model's training subjects.*IXI999-nobody"):
        load_segmentation_data(target, None)
    with pytest.raises(MiriskError, match="not a folder"):
        load_segmentation_data(target, str(tmp_path / "scans.nii"))
    with pytest.raises(MiriskError, match="trained on bundled:ixi_t1"):
        load_segmentation_data(target, str(tmp_path))
    target.data = {}
    with pytest.raises(MiriskError, match="train it with `mirisk train segmenter`"):
        load_segmentation_data(target, None)


def test_a_query_budget_limits_the_scans_the_decoder_learns_from(segmenter_dir):
    target = load_segmenter(segmenter_dir)
    slices = load_segmentation_data(target, None)
    plan = build_plan("segmentation", parse_accesses("scores"), 6, {"decoder_epochs": 3})
    neighbours = load_neighbour_slices(segmentation_source(target, None))
    payload, files = run_decoder_unit(plan.units[0], plan.settings, target, slices, redact=True,
                                      neighbours=neighbours)
    assert payload["queries_used"] == 6 and payload["threat_model"]["query_budget"] == 6
    neighbour = payload["metrics"]["reid_neighbour"]  # matched by a slice 6 voxels from the reconstructed one
    assert neighbour["available"] and neighbour["offset_voxels"] == 6 and 0 <= neighbour["top1"] <= 1
    assert payload["candidates"] == 93 and len(payload["metrics"]["per_target"]["reid_rank"]) == 8
    assert files == {}  # redacted: no scans or reconstructions
    subjects = payload["metrics"]["per_target"]["subject"]  # and subject ids pseudonymised
    assert subjects == [pseudonym(subject) for subject in target.data["train_subjects"]]
    assert all(subject.startswith("subject-") and len(subject) == 20 for subject in subjects)
    json.dumps(payload)  # the payload is plain JSON
