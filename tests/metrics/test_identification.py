import numpy as np
import pytest

from mirisk.data import split_per_subject
from mirisk.metrics.face_judge import face_judge
from mirisk.metrics.identification import (
    FaceEvaluator,
    ImageIdentification,
    identification_metrics,
    judge_identification,
    rank_of_true,
    top_k_hits,
)
from mirisk.metrics.intervals import wilson_interval


def test_top_k_and_rank():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]])
    labels = np.array([2, 1])
    assert top_k_hits(scores, labels, 1).tolist() == [False, False]
    assert top_k_hits(scores, labels, 2).tolist() == [True, True]
    assert rank_of_true(scores, labels).tolist() == [2, 2]


@pytest.fixture(scope="module")
def split_faces(faces):
    split = split_per_subject(faces)
    return faces.subset(split.train), faces.subset(split.held_out)


@pytest.fixture(scope="module")
def in_training(faces):
    mask = np.zeros(len(faces.images), dtype=bool)
    mask[split_per_subject(faces).train] = True
    return mask


def test_evaluator_trained_on_held_out_recognises_training_photos(split_faces):
    train, held_out = split_faces
    evaluator = FaceEvaluator().fit(held_out.images, held_out.labels)
    assert evaluator.accuracy(train.images, train.labels) >= 0.8


def measure(images, labels, evaluator, faces, held_out, in_training):
    judge = face_judge()
    judged = judge_identification(judge.embed(images), labels, judge.embed(held_out.images), held_out.labels, 40,
                                  "held-out photos")
    return identification_metrics(images, labels, evaluator, faces.images, faces.labels, in_training, 40, judged)


def test_real_photos_identify_and_noise_does_not(faces, split_faces, in_training):
    train, held_out = split_faces
    evaluator = FaceEvaluator().fit(held_out.images, held_out.labels)
    labels = np.arange(40)
    photos = np.stack([train.images[train.labels == label][0] for label in labels])
    real = measure(photos, labels, evaluator, faces, held_out, in_training)
    assert real.reid_top1 >= 0.8 and real.pixel_top1 >= 0.8
    assert real.judge.identification_top1 >= 0.95
    assert real.ssim_mean == pytest.approx(1.0, abs=1e-4)
    # the diagnostic that matches against the training photos themselves finds the very photo
    assert real.reid_training_photos_top1 == 1.0
    noise = np.random.default_rng(0).random(photos.shape).astype(np.float32)
    random = measure(noise, labels, evaluator, faces, held_out, in_training)
    assert random.pixel_top1 <= 0.15 and random.reid_top1 <= 0.15
    assert random.judge.identification_top1 <= 0.15
    assert random.chance_top1 == 0.025 and random.chance_top5 == 0.125
    assert random.reid_top1_ci == pytest.approx(wilson_interval(round(random.reid_top1 * 40), 40))
    # what result.json holds reads back as the same measurement
    assert ImageIdentification.from_json(random.to_json()) == random


def test_re_identification_never_uses_the_training_photos(faces, split_faces, in_training):
    """A person all of whose photos trained the model cannot be re-identified, not even from an
    exact copy of a training photo: the gallery holds only photos an attacker could have."""
    train, held_out = split_faces
    evaluator = FaceEvaluator().fit(held_out.images, held_out.labels)
    labels = np.arange(40)
    photos = np.stack([train.images[train.labels == label][0] for label in labels])
    all_of_person_0 = in_training | (faces.labels == 0)
    judge = face_judge()
    judged = judge_identification(judge.embed(photos), labels, judge.embed(held_out.images), held_out.labels, 40,
                                  "held-out photos")
    metrics = identification_metrics(photos, labels, evaluator, faces.images, faces.labels, all_of_person_0, 40,
                                     judged)
    assert metrics.reid_ranks[0] > 1
    assert metrics.reid_training_photos_top1 == 1.0
    assert metrics.reid_gallery == "held-out photos"
