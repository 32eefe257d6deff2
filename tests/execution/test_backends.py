"""Execution backends: JSON tasks in and out, locally and on a two-node Ray cluster that
loses its worker node mid-sweep."""

import pytest

from mirisk.errors import MiriskError
from mirisk.execution.backends import LocalBackend, RayBackend, make_backend
from mirisk.pipelines.face_sweep import classic_sweep_attacks, epsilon_recipes, face_sweep, parse_recipes

RECIPES = epsilon_recipes((None,)) + parse_recipes("label-smoothing=0.05")
TINY = {"n_trains": (3,), "attacks": classic_sweep_attacks(miface_iterations=10, blackbox_iterations=2), "people": 5}


def test_tasks_carry_only_json_and_name_a_known_function():
    with pytest.raises(MiriskError, match="not a JSON document"):
        LocalBackend().map("face-sweep-point", [{"data": object()}])
    with pytest.raises(MiriskError, match="unknown task 'rm -rf'"):
        LocalBackend().map("rm -rf", [{}])
    with pytest.raises(MiriskError, match="--address is for --backend ray"):
        make_backend("local", "auto")


def test_a_sweep_survives_losing_a_node_and_matches_the_local_run(ray_cluster):
    local = face_sweep("bundled:att_faces", "softmax", RECIPES, backend=LocalBackend(1), **TINY)
    arrived: list[int] = []

    def on_point(done: int) -> None:
        arrived.append(done)
        if done == 1:  # the first point is back; the worker node dies with the rest in flight
            assert ray_cluster.kill_worker_node() >= 1

    on_ray = face_sweep("bundled:att_faces", "softmax", RECIPES, backend=RayBackend(ray_cluster.address, 1),
                        on_point=on_point, **TINY)
    assert arrived == [1, 2]
    assert on_ray == local
    assert [point["defence"] for point in on_ray] == [recipe.label for recipe in RECIPES]
