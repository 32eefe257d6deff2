"""mirisk: measure and reduce how much trained models leak about their training data
through model inversion."""

__version__ = "0.1.0"
