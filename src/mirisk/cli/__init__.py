"""The ``mirisk`` command line: importing the command modules registers their commands."""

from mirisk.cli import audit, faces, federated, mri, priors, serve, sweep, tabular  # noqa: F401  (registers the commands)
from mirisk.cli.common import app

__all__ = ["app"]
