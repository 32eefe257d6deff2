"""The independent face judge on the real AT&T faces."""

from pathlib import Path

import numpy as np
import pytest

from mirisk.data import split_per_subject
from mirisk.metrics.face_judge import centroid_scores, face_judge, to_judge_pixels
from mirisk.metrics.identification import evaluator_disagreement, judge_identification
from mirisk.metrics.intervals import wilson_interval

SRC = Path(__file__).resolve().parents[2] / "src/mirisk"


@pytest.fixture(scope="module")
def embedded(faces):
    return face_judge().embed(faces.images)


def test_the_judge_names_almost_every_att_photo_leave_one_out(faces, embedded):
    """Nearest centroid of each person's other photos, each photo left out in turn."""
    descriptors, labels = embedded.descriptors, faces.labels
    sums = np.stack([descriptors[labels == c].sum(0) for c in range(40)])
    counts = np.bincount(labels, minlength=40)[:, None].astype(float)
    own = np.arange(40)[None, :] == labels[:, None]
    centroids = (sums[None] - own[..., None] * descriptors[:, None]) / (counts[None] - own[..., None])
    predicted = np.linalg.norm(centroids - descriptors[:, None], axis=2).argmin(1)
    assert (predicted == labels).mean() >= 0.95
    assert embedded.detected.mean() >= 0.95  # nearly every real photo holds a detected face


def test_a_training_photo_is_named_and_noise_or_blank_is_near_chance(faces, embedded):
    split = split_per_subject(faces)
    gallery, gallery_labels = embedded.subset(split.held_out), faces.labels[split.held_out]
    labels = np.arange(40)
    first_training = np.array([split.train[faces.labels[split.train] == c][0] for c in labels])
    real = judge_identification(embedded.subset(first_training), labels, gallery, gallery_labels, 40, "held-out")
    assert real.identification_top1 >= 0.95 and real.face_rate >= 0.95
    assert real.identification_top1_ci == pytest.approx(wilson_interval(round(real.identification_top1 * 40), 40))
    rng = np.random.default_rng(0)
    noise = face_judge().embed(rng.random((40, 1, 112, 92)).astype(np.float32))
    blank = face_judge().embed(np.full((40, 1, 112, 92), 0.5, dtype=np.float32))
    for probe in (noise, blank):
        judged = judge_identification(probe, labels, gallery, gallery_labels, 40, "held-out")
        assert judged.identification_top1 <= 0.15 and judged.face_rate <= 0.1
        assert judged.identification_top1_ci == pytest.approx(
            wilson_interval(round(judged.identification_top1 * 40), 40))
    assert real.chance_top1 == 0.025 and len(real.lineups[0]) == 5 and real.lineups[0][0] == 0


def test_disagreement_is_the_share_of_pixel_identified_people_the_judge_rejects():
    pixel, judge = np.array([1, 1, 1, 1, 3]), np.array([1, 2, 5, 1, 1])
    found = evaluator_disagreement(pixel, judge)
    assert (found.rate, found.pixel_identified, found.judge_rejected) == (0.5, 4, 2)
    nobody = evaluator_disagreement(np.array([2, 3]), np.array([1, 1]))
    assert (nobody.rate, nobody.pixel_identified) == (0.0, 0)


def test_preprocessing_stretches_to_eight_bits_and_upsamples_small_images():
    image = np.linspace(-3, 7, 56 * 46, dtype=np.float64).reshape(1, 56, 46)
    pixels = to_judge_pixels(image)
    assert pixels.dtype == np.uint8 and pixels.shape == (56 * 4, 46 * 4, 3)
    assert pixels.min() == 0 and pixels.max() == 255
    assert to_judge_pixels(np.zeros((1, 200, 180))).shape == (200, 180, 3)


def test_centroid_scores_leave_people_without_photos_at_minus_infinity():
    scores = centroid_scores(np.zeros((1, 2)), np.array([[1.0, 0.0], [3.0, 0.0]]), np.array([0, 0]), 3)
    assert scores[0, 0] == -2.0 and np.isneginf(scores[0, 1:]).all()


def test_no_attack_prior_or_oracle_can_reach_the_judge():
    """The judge stays out of the attack: nothing under attacks/, access/ or priors/ imports it."""
    for folder in ("attacks", "access", "priors"):
        for path in (SRC / folder).glob("*.py"):
            text = path.read_text()
            assert "face_judge" not in text and "dlib" not in text and "face_recognition_models" not in text, path
