"""The segmentation oracle's output types and the decoder's contract."""

import numpy as np
import pytest

from mirisk.attacks.decoder import DecoderInversion, DecoderSettings, SegmentationOracle
from mirisk.errors import MiriskError
from mirisk.models.segmentation import SegmentationTarget, build_segmenter


@pytest.fixture(scope="module")
def target():
    return SegmentationTarget(build_segmenter("unet", 1, 3, width=4).eval(), "unet", ("a", "b", "c"))


def test_output_types(target):
    scans = np.random.default_rng(0).random((3, 1, 32, 32), dtype=np.float32)
    probs = SegmentationOracle(target, "probs").query(scans)
    logits = SegmentationOracle(target, "logits").query(scans)
    labels = SegmentationOracle(target, "labels").query(scans)
    assert probs.shape == logits.shape == labels.shape == (3, 3, 32, 32)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert set(np.unique(labels)) <= {0.0, 1.0} and np.all(labels.sum(axis=1) == 1)
    assert np.array_equal(labels.argmax(axis=1), logits.argmax(axis=1))


def test_decoder_learns_and_refuses_before_fitting(target):
    scans = np.random.default_rng(1).random((4, 1, 32, 32), dtype=np.float32)
    oracle = SegmentationOracle(target, "logits")
    with pytest.raises(MiriskError, match="before reconstructing"):
        DecoderInversion().reconstruct(oracle.query(scans))
    attack = DecoderInversion(DecoderSettings(width=4, depth=2, epochs=2, batch_size=2)).fit(oracle, scans)
    reconstructions = attack.reconstruct(oracle.query(scans))
    assert reconstructions.shape == scans.shape and 0 <= reconstructions.min() and reconstructions.max() <= 1
    assert oracle.queries_used == 12  # 4 scans asked before fitting, 4 to fit, 4 to invert


def test_unknown_output_type_is_named(target):
    with pytest.raises(MiriskError, match="unknown output type"):
        SegmentationOracle(target, "heatmap")
