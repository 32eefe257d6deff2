"""Segmenters saved as safetensors + JSON and loaded back, never unpickled."""

import json
import os
import stat

import numpy as np
import pytest

from mirisk.errors import MiriskError
from mirisk.models.segmentation_store import load_segmenter, save_segmenter
from mirisk.models.store import save_target


def test_a_saved_segmenter_loads_with_the_same_outputs_and_records(segmenter_dir):
    target = load_segmenter(segmenter_dir)
    assert target.architecture == "unet" and len(target.data["train_subjects"]) == 8
    assert target.data["images"] == "bundled:ixi_t1" and 0 < target.metrics["train_dice"] <= 1
    scans = np.random.default_rng(0).random((2, 1, 120, 120), dtype=np.float32)
    copy = save_segmenter(target, segmenter_dir.parent / "copy")
    np.testing.assert_array_equal(load_segmenter(copy).logits(scans).numpy(), target.logits(scans).numpy())
    for name in ("model.safetensors", "target.json"):
        assert stat.S_IMODE(os.stat(copy / name).st_mode) == 0o600


def test_other_folders_and_pickles_are_refused(tmp_path, segmenter_dir, targets):
    classifier = save_target(targets["softmax"], tmp_path / "classifier")
    with pytest.raises(MiriskError, match="not a mirisk-segmenter/1 metadata file"):
        load_segmenter(classifier)
    pickled = tmp_path / "model.pt"
    pickled.write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(MiriskError, match="unpickling"):
        load_segmenter(pickled)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.safetensors").write_bytes((segmenter_dir / "model.safetensors").read_bytes())
    metadata = json.loads((segmenter_dir / "target.json").read_text())
    metadata["training"]["width"] = 4
    (broken / "target.json").write_text(json.dumps(metadata))
    with pytest.raises(MiriskError, match="does not match the architecture"):
        load_segmenter(broken)
