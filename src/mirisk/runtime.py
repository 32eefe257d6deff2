"""Process-wide settings every attack and training entry point applies first."""

from __future__ import annotations

import platform
import random

import numpy as np
import torch


def prepare_torch(seed: int | None = None) -> None:
    """Flush denormal floats (gradient attacks ran 50-70x slower without it on the
    reference CPUs) and seed every random generator when ``seed`` is given."""
    torch.set_flush_denormal(True)
    if seed is not None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)


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
