"""Generative priors learnt from public people: what a modern attacker brings (GMI, Zhang et al. 2020)."""
