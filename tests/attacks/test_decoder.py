"""The segmentation oracle's output types and the decoder's contract."""

import numpy as np
import pytest

from mirisk.access.segmentation import SegmentationOracle
from mirisk.attacks.contract import seeded
from mirisk.attacks.decoder import DecoderInversion, DecoderSettings
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


def test_decoder_learns_from_the_attackers_scans_and_counts_only_those(target):
    scans = np.random.default_rng(1).random((4, 1, 32, 32), dtype=np.float32)
    oracle = SegmentationOracle(target, "logits")
    observed = oracle.query(scans)
    attack = DecoderInversion(scans[:3], DecoderSettings(width=4, depth=2, epochs=2, batch_size=2))
    result = attack.run(oracle, observed, generator=seeded(0))
    assert result.reconstructions.shape == scans.shape
    assert 0 <= result.reconstructions.min() and result.reconstructions.max() <= 1
    assert result.queries_used == 3 and oracle.queries_used == 7  # 4 outputs held, 3 of its own scans to fit
    assert result.threat_model.access.value == "scores" and result.target_labels.tolist() == [0, 1, 2, 3]


def test_unknown_output_type_is_named(target):
    with pytest.raises(MiriskError, match="unknown output type"):
        SegmentationOracle(target, "heatmap")
