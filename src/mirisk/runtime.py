"""Process-wide settings every attack and training entry point applies first, and how a
library entry point seeds its own work without changing the caller's random generators."""

from __future__ import annotations

import functools
import platform
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

import numpy as np
import torch

P = ParamSpec("P")
R = TypeVar("R")


def prepare_torch(seed: int | None = None) -> None:
    """Flush denormal floats (gradient attacks ran 50-70x slower without it on the
    reference CPUs) and seed every random generator when ``seed`` is given."""
    torch.set_flush_denormal(True)
    if seed is not None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)


@contextmanager
def global_generators_kept() -> Iterator[None]:
    """Give the caller back the states of Python's, NumPy's and torch's global random
    generators as they were before the block, whatever the block seeds or draws."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


def keeps_caller_generators(function: Callable[P, R]) -> Callable[P, R]:
    """A library entry point that seeds the global generators for its own reproducibility
    (``prepare_torch(seed)``: model initialisation draws from them) without changing the
    caller's: only the CLI and the audit runner set process-wide seeds."""

    @functools.wraps(function)
    def kept(*args: P.args, **kwargs: P.kwargs) -> R:
        with global_generators_kept():
            return function(*args, **kwargs)

    return kept


def versions() -> dict[str, str]:
    """Versions of the pieces that determine a result, recorded beside it."""
    import sklearn
    import skimage

    from mirisk import __version__

    return {
        "mirisk": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "scikit-image": skimage.__version__,
    }
