"""Federated learning: simulate clients and an honest-but-curious server, and record exactly
what the server sees (the gradient attacks on it are in :mod:`mirisk.attacks.gradient`)."""

from mirisk.fl.record import ServerRecord
from mirisk.fl.simulation import ClientSettings, UpdateDefence, simulate_round

__all__ = ["ClientSettings", "ServerRecord", "UpdateDefence", "simulate_round"]
