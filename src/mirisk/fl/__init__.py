"""Federated learning: simulate clients and an honest-but-curious server, and reconstruct a
client's training images from exactly what the server records."""

from mirisk.fl.attacks import GradientInversion, recover_labels
from mirisk.fl.record import ServerRecord
from mirisk.fl.simulation import ClientSettings, UpdateDefence, simulate_round

__all__ = ["ClientSettings", "GradientInversion", "ServerRecord", "UpdateDefence", "recover_labels", "simulate_round"]
