"""Face targets trained with defences (each applied and recorded; DP stops MI-Face), and the shared gallery."""

from dataclasses import replace

import pytest

from mirisk.defences import DPSettings, TrainingDefences
from mirisk.models.store import load_target, save_target
from mirisk.models.training import TrainingConfig
from mirisk.pipelines.faces import configured_miface, face_gallery, invert_faces, train_face_target


def test_dp_training_records_its_guarantee_at_the_requested_epsilon(faces, tmp_path):
    target = train_face_target("softmax", faces, config=TrainingConfig(epochs=4, learning_rate=25.0, batch_size=280),
                               defences=TrainingDefences(dp=DPSettings(3.0)))
    dp = target.training["dp"]
    assert dp["epsilon"] == pytest.approx(3.0, rel=0.05) and dp["delta"] == 1e-5
    assert set(dp) >= {"noise_multiplier", "max_grad_norm", "sample_rate", "steps", "accountant"}
    assert dp["steps"] == 4 and target.training["optimiser"].startswith("sgd")
    reloaded = load_target(save_target(target, tmp_path / "model"))
    assert reloaded.training["dp"] == dp


def test_dp_at_epsilon_1_stops_white_box_identification(faces, targets):
    # measured (default DP settings, 60 epochs): identification 100% -> 2.5% (chance), test accuracy 98% -> 0%
    private = train_face_target("softmax", faces, config=TrainingConfig(epochs=10, learning_rate=25.0, batch_size=280),
                                defences=TrainingDefences(dp=DPSettings(1.0)))
    attack = configured_miface(iterations=300)
    undefended, defended = (invert_faces(target, faces, attack).metrics["identification_top1"]
                            for target in (targets["softmax"], private))
    assert undefended >= 0.9 and defended <= undefended - 0.5
    assert private.metrics["test_accuracy"] < targets["softmax"].metrics["test_accuracy"]


def test_dropout_is_part_of_the_saved_architecture(faces, tmp_path):
    target = train_face_target("softmax", faces, config=TrainingConfig(epochs=1),
                               defences=TrainingDefences(dropout=0.5, weight_decay=1e-3))
    assert target.architecture_params == {"dropout": 0.5}
    assert target.training["weight_decay"] == 1e-3 and target.training["dropout"] == 0.5
    assert load_target(save_target(target, tmp_path / "model")).module.dropout.p == 0.5


def test_early_stopping_holds_back_one_photo_per_person_and_stops(faces):
    target = train_face_target("softmax", faces, config=TrainingConfig(epochs=300),
                               defences=TrainingDefences(early_stopping=2))
    assert target.training["epochs_run"] < 300 and target.training["early_stopping_patience"] == 2
    assert target.metrics["test_accuracy"] > 0.8


def test_a_gallery_is_fitted_once_for_the_same_photos_and_split_and_never_for_other_photos(faces, targets):
    """A retrain with the model's split reuses the gallery (one evaluator fit per audit);
    other photos under the same source name, or another seed, get their own fit."""
    gallery = face_gallery(targets["softmax"], faces, seed=0)
    retrain = train_face_target("softmax", faces, config=TrainingConfig(epochs=1))  # the same default split
    assert face_gallery(retrain, faces, seed=0) is gallery
    assert face_gallery(targets["softmax"], faces, seed=1) is not gallery
    darker = replace(faces, images=faces.images * 0.5)  # same source name, other content, same split
    assert darker.source == faces.source
    other = face_gallery(train_face_target("softmax", darker, config=TrainingConfig(epochs=1)), darker, seed=0)
    assert other is not gallery and other.evaluator is not gallery.evaluator
