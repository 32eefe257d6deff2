"""Image folders and the bundled faces: loading, shapes, and one-line errors for bad input."""

import numpy as np
import pytest
from PIL import Image

from mirisk.data import load_faces, load_image_folder
from mirisk.errors import MiriskError
from tests.conftest import SHARED_FACES, write_face_folder


def test_bundled_faces_are_the_att_set(faces):
    assert faces.images.shape == (400, 1, 112, 92)
    assert faces.n_classes == 40
    assert np.bincount(faces.labels).tolist() == [10] * 40
    assert 0.0 <= faces.images.min() and faces.images.max() <= 1.0
    assert faces.subject_ids[0] == "s01"


@pytest.mark.skipif(not SHARED_FACES.is_dir(), reason="full AT&T set not beside the checkout")
def test_bundled_copy_is_lossless():
    full = load_image_folder(SHARED_FACES)
    bundled = load_faces(None)
    np.testing.assert_array_equal(full.images, bundled.images)
    np.testing.assert_array_equal(full.labels, bundled.labels)


def test_folder_round_trip_png(tmp_path, faces):
    root = write_face_folder(tmp_path, faces, people=3, per_person=4, suffix=".png")
    loaded = load_image_folder(root)
    assert loaded.images.shape == (12, 1, 112, 92)
    assert loaded.class_names == ("s01", "s02", "s03")
    np.testing.assert_allclose(loaded.images[:4], faces.images[:4], atol=1 / 255)


def test_mixed_sizes_resized_to_most_common_and_colour_detected(tmp_path, faces):
    root = write_face_folder(tmp_path, faces, people=2, per_person=3)
    Image.fromarray(np.zeros((50, 40, 3), dtype=np.uint8)).save(root / "s01" / "odd.png")
    loaded = load_image_folder(root)
    assert loaded.images.shape == (7, 3, 112, 92)


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "nobody").mkdir()
    with pytest.raises(MiriskError, match="no images found"):
        load_image_folder(tmp_path)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(MiriskError, match="not found"):
        load_image_folder(tmp_path / "absent")


def test_one_class_is_a_clear_error(tmp_path, faces):
    root = write_face_folder(tmp_path, faces, people=1)
    with pytest.raises(MiriskError, match="one class"):
        load_image_folder(root)


def test_unreadable_file_is_named(tmp_path, faces):
    root = write_face_folder(tmp_path, faces, people=2)
    broken = root / "s02" / "broken.pgm"
    broken.write_bytes(b"not an image")
    with pytest.raises(MiriskError, match="broken.pgm"):
        load_image_folder(root)


def test_fingerprint_changes_with_pixels(faces):
    changed = faces.subset(np.arange(len(faces.images)))
    changed.images[0, 0, 0, 0] = 1.0 - changed.images[0, 0, 0, 0]
    assert changed.fingerprint() != faces.fingerprint()


@pytest.mark.parametrize("side, message", [
    (20000, "could be decompression bomb"),  # Pillow's own limit, refused on opening
    (5000, "declares 5000 x 5000 pixels"),  # under Pillow's limit, over a photo's
])
def test_a_small_file_declaring_a_huge_image_is_refused_before_decoding(tmp_path, side, message):
    """A 20,000 x 20,000 PNG compresses to about 100 KB; decoding it would take 400 MB."""
    for person in ("ann", "bob"):
        (tmp_path / person).mkdir()
        Image.new("L", (side, side)).save(tmp_path / person / "bomb.png")
    assert (tmp_path / "ann" / "bomb.png").stat().st_size < 500_000
    with pytest.raises(MiriskError, match=message) as refused:
        load_image_folder(tmp_path)
    assert "\n" not in str(refused.value)
