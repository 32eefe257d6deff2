"""The judge's on-disk cache: off unless asked for, shared by judges, never trusted blindly."""

import numpy as np

from mirisk.metrics import judge_cache
from mirisk.metrics.face_judge import FaceJudge


def test_embeddings_are_kept_owner_only_and_reused_by_another_judge(faces, tmp_path, monkeypatch):
    monkeypatch.setenv(judge_cache.CACHE_VARIABLE, str(tmp_path / "cache"))
    photos = faces.images[:3]
    first = FaceJudge().embed(photos)
    stored = list((tmp_path / "cache" / "judge").iterdir())
    assert len(stored) == 3  # one file per image
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in stored)
    assert (tmp_path / "cache" / "judge").stat().st_mode & 0o777 == 0o700
    reader = FaceJudge()
    monkeypatch.setattr(reader, "_embed", lambda images: (_ for _ in ()).throw(AssertionError("re-embedded")))
    again = reader.embed(photos)
    np.testing.assert_array_equal(again.descriptors, first.descriptors)
    np.testing.assert_array_equal(again.detected, first.detected)


def test_an_image_is_embedded_once_whatever_batch_it_comes_in(faces, monkeypatch):
    monkeypatch.delenv(judge_cache.CACHE_VARIABLE, raising=False)  # the run's shared cache may hold these photos
    judge = FaceJudge()
    embedded: list[int] = []
    real = judge._embed
    judge._embed = lambda images: embedded.append(len(images)) or real(images)
    pair = judge.embed(faces.images[:2])
    overlapping = judge.embed(faces.images[[1, 2, 1]])
    assert embedded == [2, 1]  # only photo 2 is new; the repeated photo 1 comes from the cache
    np.testing.assert_array_equal(overlapping.descriptors[0], pair.descriptors[1])
    np.testing.assert_array_equal(overlapping.descriptors[0], overlapping.descriptors[2])
    np.testing.assert_array_equal(judge.embed(faces.images[[0, 1]]).descriptors, pair.descriptors)
    assert judge.embed(faces.images[:0]).descriptors.shape == (0, 128)


def test_a_torn_cache_file_is_embedded_again_and_nothing_is_written_without_the_variable(faces, tmp_path,
                                                                                        monkeypatch):
    monkeypatch.setenv(judge_cache.CACHE_VARIABLE, str(tmp_path / "cache"))
    photos = faces.images[3:5]
    first = FaceJudge().embed(photos)
    stored = sorted((tmp_path / "cache" / "judge").iterdir())[0]
    stored.write_bytes(stored.read_bytes()[:40])
    np.testing.assert_array_equal(FaceJudge().embed(photos).descriptors, first.descriptors)
    monkeypatch.delenv(judge_cache.CACHE_VARIABLE)
    assert judge_cache.cache_folder() is None
