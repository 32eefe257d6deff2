"""Real client images for the federated tests: the bundled faces, pooled to 56 x 46."""

import pytest

from mirisk.pipelines.federated import downscaled


@pytest.fixture(scope="session")
def small_faces(faces):
    return downscaled(faces, 2)
