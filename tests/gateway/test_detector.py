"""The probe detector on real faces: new photos pass, inversion searches are flagged."""

import numpy as np
import pytest
import torch

from mirisk.access.oracle import Oracle
from mirisk.access.policies import parse_policy
from mirisk.attacks.basis import dct_basis, public_face_basis
from mirisk.attacks.blackbox import ScoreBlackBox
from mirisk.attacks.contract import seeded
from mirisk.attacks.labelonly import BoundaryRepulsion
from mirisk.errors import MiriskError
from mirisk.gateway.detector import DetectorSettings, ProbeDetector, calibrate
from mirisk.gateway.watch import WatchedOracle


@pytest.fixture(scope="module")
def photos(faces):
    """Calibration photos (the first 7 of each person) and benign traffic (the other 3)."""
    rank = np.zeros(len(faces.labels), dtype=int)
    for label in np.unique(faces.labels):
        rank[faces.labels == label] = np.arange((faces.labels == label).sum())
    return faces.images[rank < 7], faces.images[rank >= 7]


def test_calibration_sets_a_band_around_benign_distances(photos):
    calibration, _ = photos
    settings = calibrate(calibration, false_positive_rate=0.02)
    assert 0 < settings.low < settings.high < 2
    wider = calibrate(calibration, false_positive_rate=0.002)
    assert wider.low <= settings.low and wider.high >= settings.high
    with pytest.raises(MiriskError, match="calibration needs"):
        calibrate(calibration[:8], 0.01)
    with pytest.raises(MiriskError, match="action must be one of"):
        DetectorSettings(low=0.1, high=1.0, action="shout")


def test_benign_streams_are_not_flagged(photos):
    calibration, held_out = photos
    detector = ProbeDetector(calibrate(calibration, 0.01, window=50), held_out[0].size)
    rng = np.random.default_rng(0)
    alerts = [detector.observe(f"user{user}", batch)
              for user in range(5) for batch in np.array_split(held_out[rng.permutation(len(held_out))], 15)]
    assert alerts == [None] * len(alerts)


@pytest.mark.parametrize("attack", ["scores-dct", "scores-public", "label-dct"])
def test_inversion_searches_are_flagged_early(photos, faces, targets, attack):
    calibration, _ = photos
    target = targets["softmax"]
    detector = ProbeDetector(calibrate(calibration, 0.01, window=50), calibration[0].size)
    # A prior of natural faces makes natural-looking queries; the detector sees only the queries.
    basis = public_face_basis(faces.images[faces.labels >= 20]) if attack == "scores-public" else dct_basis(
        target.input_shape)
    oracle = WatchedOracle(Oracle(target, parse_policy("label" if attack == "label-dct" else "scores")), detector)
    search = (BoundaryRepulsion(iterations=2, init_rounds=2, basis=basis) if attack == "label-dct"
              else ScoreBlackBox(iterations=2, basis=basis))
    search.run(oracle, torch.arange(20), generator=seeded(0))
    assert oracle.flagged_at is not None and oracle.flagged_at <= 128


def test_the_detector_watches_a_bounded_number_of_keys_least_recent_forgotten_first():
    detector = ProbeDetector(DetectorSettings(low=0.1, high=1.0, history=20, max_keys=3), input_size=16)
    batch = np.random.default_rng(0).random((4, 16), dtype=np.float32)
    for key in ("a", "b", "c", "a", "d"):  # "b" is then the key idle longest
        detector.observe(key, batch)
    assert detector.watched == 3 and set(detector._states) == {"c", "a", "d"}
    with pytest.raises(MiriskError, match="key count must be >= 1"):
        DetectorSettings(low=0.1, high=1.0, max_keys=0)
