"""Where the work runs: in this process, or as tasks on a Ray cluster."""

from mirisk.execution.backends import Backend, LocalBackend, RayBackend, make_backend

__all__ = ["Backend", "LocalBackend", "RayBackend", "make_backend"]
