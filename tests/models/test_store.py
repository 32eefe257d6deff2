import pickle

import pytest
import torch
from safetensors.torch import save_file

from mirisk.errors import MiriskError
from mirisk.models import build_model, load_target, save_target


def test_round_trip_gives_identical_outputs(tmp_path, targets, faces):
    target = targets["softmax"]
    save_target(target, tmp_path / "model")
    loaded = load_target(tmp_path / "model")
    x = torch.as_tensor(faces.images[:16])
    torch.testing.assert_close(loaded.module(x), target.module(x))
    assert loaded.metrics == target.metrics
    assert loaded.data["fingerprint"] == faces.fingerprint()
    assert (tmp_path / "model" / "model.safetensors").stat().st_mode & 0o777 == 0o600


def test_pickle_checkpoint_file_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(build_model("softmax", (1, 4, 4), 2).state_dict(), path)
    with pytest.raises(MiriskError, match="pickle"):
        load_target(path)


def test_pickle_in_a_folder_is_refused(tmp_path):
    (tmp_path / "weights.pkl").write_bytes(pickle.dumps({"w": 1}))
    with pytest.raises(MiriskError, match="pickle"):
        load_target(tmp_path)


def test_renamed_pickle_is_refused_by_content(tmp_path):
    path = tmp_path / "innocent.dat"
    path.write_bytes(pickle.dumps({"w": 1}))
    with pytest.raises(MiriskError, match="pickle"):
        load_target(path)


def test_corrupted_weights_are_a_clear_error(tmp_path, targets):
    save_target(targets["softmax"], tmp_path / "model")
    (tmp_path / "model" / "model.safetensors").write_bytes(b"garbage" * 10)
    with pytest.raises(MiriskError, match="not a readable safetensors"):
        load_target(tmp_path / "model")


def test_weights_of_another_architecture_are_a_clear_error(tmp_path, targets):
    save_target(targets["softmax"], tmp_path / "model")
    save_file({"linear.weight": torch.zeros(3, 3)}, tmp_path / "model" / "model.safetensors")
    with pytest.raises(MiriskError, match="does not match"):
        load_target(tmp_path / "model")


def test_existing_model_folder_is_not_overwritten(tmp_path, targets):
    save_target(targets["softmax"], tmp_path / "model")
    with pytest.raises(MiriskError, match="not empty"):
        save_target(targets["softmax"], tmp_path / "model")


def test_unknown_architecture_is_a_clear_error():
    with pytest.raises(MiriskError, match="unknown architecture"):
        build_model("transformer", (1, 4, 4), 2)


def test_a_reversed_or_non_finite_value_range_is_refused(tmp_path, targets):
    import json

    folder = save_target(targets["softmax"], tmp_path / "model")
    metadata = json.loads((folder / "target.json").read_text())
    for bad in ([1.0, 0.0], [0.0, float("inf")]):
        (folder / "target.json").write_text(json.dumps({**metadata, "value_range": bad}))
        with pytest.raises(MiriskError, match="value_range"):
            load_target(folder)
