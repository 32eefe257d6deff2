"""LFW in its published layout: the public/private split by photo count, and the centre crop
taken once (the deep-funneled face fills about the central 120 of 250 pixels)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from mirisk.data.faces import default_training_photos, load_faces
from mirisk.data.lfw import (
    BUNDLED_PRIVATE, CROP, PRIVATE_MIN_PHOTOS, PRIVATE_PER_PERSON, SIZE, crop_face, lfw_photos, private_people,
    public_people, read_people,
)
from mirisk.errors import MiriskError


def _lfw(root, counts: dict[str, int]):
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        for index in range(count):
            picture = np.zeros((250, 250, 3), np.uint8)
            picture[65:185, 65:185] = (120 + index, 100, 200)  # the central 120 x 120 px: the face
            Image.fromarray(picture).save(root / name / f"{name}_{index + 1:04d}.jpg", format="PNG")  # lossless
    return root


def test_people_are_split_by_their_photo_count_and_never_overlap(tmp_path):
    root = _lfw(tmp_path, {"Ann_A": 22, "Bob_B": 1, "Cy_C": 9, "Dee_D": 10, "Eve_E": 25})
    public, private = public_people(root), private_people(root, per_person=21)
    assert sorted(public) == ["Bob_B", "Cy_C"] and sorted(private) == ["Ann_A", "Eve_E"]
    assert [len(files) for files in private.values()] == [21, 21] and not set(public) & set(private)


def test_the_crop_is_the_central_120_pixels_at_64_in_colour(tmp_path):
    root = _lfw(tmp_path, {"Ann_A": 20, "Bob_B": 2})
    data = read_people(root, private_people(root, per_person=3), "lfw_private:test")
    assert data.images.shape == (3, 3, SIZE, SIZE) and data.class_names == ("Ann_A",) and CROP == 120
    assert np.abs(data.images[0, 2] - 200 / 255).max() < 0.01 and data.images[0].min() > 0.35  # no border left
    with Image.open(root / "Ann_A" / "Ann_A_0002.jpg") as photo:
        assert crop_face(photo).shape == (3, SIZE, SIZE)


def test_a_folder_not_in_lfws_layout_is_refused(tmp_path):
    with pytest.raises(MiriskError, match="not in LFW's layout"):
        lfw_photos(tmp_path)
    with pytest.raises(MiriskError, match="LFW folder not found"):
        lfw_photos(tmp_path / "nowhere")


def test_the_bundled_private_people_load_without_the_lfw_folder():
    private = load_faces(BUNDLED_PRIVATE)
    counts = np.bincount(private.labels)
    assert private.n_classes == 62 and counts.min() >= PRIVATE_MIN_PHOTOS and counts.max() == PRIVATE_PER_PERSON
    assert private.input_shape == (3, SIZE, SIZE) and "George_W_Bush" in private.class_names
    assert default_training_photos(private) == 14 and default_training_photos(load_faces(None)) == 7


def test_lfw_specs_read_a_folder_and_the_unshipped_public_photos_are_refused_in_one_line(tmp_path):
    root = _lfw(tmp_path, {"Ann_A": 20, "Bob_B": 2, "Cy_C": 3})
    assert load_faces(f"lfw_private:{root}").class_names == ("Ann_A",)
    assert load_faces(f"lfw_public:{root}").class_names == ("Bob_B", "Cy_C")
    with pytest.raises(MiriskError, match="LFW's public photos are not shipped .* pass lfw_public:DIR") as refused:
        load_faces("bundled:lfw_public")
    assert "\n" not in str(refused.value)


def test_train_faces_uses_the_lfw_split_when_none_is_asked_for(tmp_path):
    from typer.testing import CliRunner

    from mirisk.cli import app

    result = CliRunner().invoke(app, ["train", "faces", "--model", "softmax", "--data", BUNDLED_PRIVATE,
                                      "--out", str(tmp_path / "model"), "--epochs", "2"])
    assert result.exit_code == 0, result.output
    recorded = json.loads((tmp_path / "model" / "target.json").read_text())["data"]
    assert recorded["source"] == BUNDLED_PRIVATE and recorded["n_train_per_subject"] == 14
