"""Process-wide settings every attack and training entry point applies first, and how a
library entry point seeds its own work without changing the caller's random generators."""

from __future__ import annotations

import ctypes
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


# mallopt's parameters (glibc's malloc.h).
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
KEPT_FREE_BYTES = 2**30  # the free memory at the top of the heap kept for reuse, not handed back


@functools.cache
def reuse_freed_memory() -> bool:
    """Have glibc's allocator keep freed memory for the next tensor instead of handing it
    back to the kernel. By default glibc maps each allocation over its mmap threshold (at
    most 32 MB) afresh and unmaps it when freed, so every large activation of a batched
    attack is page-faulted in again: in an audit of the CNN, 42% of the CPU time was the
    kernel's (BENCHMARKS.md, "Freed memory kept for reuse"). The process's peak memory stays
    reserved instead. Whether it applied: False off glibc, where nothing changes."""
    if platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)  # the C library this process already runs on
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, KEPT_FREE_BYTES))


def convolution_layout(module: torch.nn.Module, example: torch.Tensor) -> torch.nn.Module:
    """``module`` with its 4-D (convolution) weights stored channels-last, in place, so that
    oneDNN picks its faster kernels on CPU and the activations follow: every face attack on
    the small CNN ran 1.5-1.7x faster (medians over 3 seeds), its outputs equal up to float
    rounding (BENCHMARKS.md, "Channels-last convolutions"). The layout is kept only where
    the module answers ``example`` as before; a module without such weights, or one whose
    code needs the default layout (``x.view(n, -1)`` after a convolution), is left as it is.
    Either way the outputs are the same: only the speed differs."""
    if not any(parameter.dim() == 4 for parameter in module.parameters()):
        return module
    with torch.no_grad():
        try:
            before = module(example)
        except Exception:  # noqa: BLE001 - left exactly as given; the caller's own use reports the problem
            return module
        module.to(memory_format=torch.channels_last)
        try:
            kept = torch.allclose(module(example), before, rtol=1e-4, atol=1e-5)
        except Exception:  # noqa: BLE001 - e.g. a view of a channels-last activation
            kept = False
    if not kept:
        module.to(memory_format=torch.contiguous_format)
    return module


def prepare_torch(seed: int | None = None) -> None:
    """Flush denormal floats (gradient attacks ran 50-70x slower without it on the
    reference CPUs), keep freed memory for reuse (:func:`reuse_freed_memory`), and seed
    every random generator when ``seed`` is given."""
    torch.set_flush_denormal(True)
    reuse_freed_memory()
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
