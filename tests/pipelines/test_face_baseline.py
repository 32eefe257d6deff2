"""The label-permuted twin: a seeded derangement, the recorded recipe, and when it is unavailable."""

from dataclasses import replace

import numpy as np
import torch

from mirisk.pipelines.face_baseline import derangement, label_permuted_twin, twin_recipe
from mirisk.pipelines.faces import BaselineUnavailable


def test_a_derangement_moves_every_label_and_follows_its_seed():
    for seed in range(20):
        permutation = derangement(40, seed)
        assert sorted(permutation) == list(range(40)) and not (permutation == np.arange(40)).any()
    assert np.array_equal(derangement(40, 3), derangement(40, 3))
    assert not np.array_equal(derangement(40, 3), derangement(40, 4))


def test_the_twin_keeps_the_family_split_and_recipe_but_no_one_keeps_their_label(targets, faces):
    target = targets["softmax"]
    twin = label_permuted_twin(target, faces, seed=0)
    assert twin.architecture == target.architecture and twin.data["split_seed"] == target.data["split_seed"]
    assert twin.training["epochs"] == target.training["epochs"] and twin.training["label_permutation_seed"] == 0
    assert twin.metrics["train_accuracy"] >= 0.9  # it learnt its (permuted) labels
    permutation = derangement(40, 0)
    own_photos = faces.images[faces.labels == 0][:1]
    assert int(twin.module(torch.as_tensor(own_photos)).argmax()) == int(permutation[0])


def test_imported_and_defended_models_get_no_twin_and_say_why(targets):
    target = targets["softmax"]
    imported = replace(target, data={**target.data, "split": "unknown"})
    assert "imported model" in twin_recipe(imported).reason
    private = replace(target, training={**target.training, "dp": {"epsilon": 8.0}})
    found = twin_recipe(private)
    assert isinstance(found, BaselineUnavailable) and "trained with dp" in found.reason
