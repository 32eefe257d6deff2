"""End-to-end jobs: train a target on faces, attack it, measure, write the evidence."""
