"""The JSON manifests that describe a model file mirisk imports (a segmentation network, a
tabular model): recognising one, checking its fields, and reading its list of training ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mirisk.artifacts import read_json
from mirisk.errors import MiriskError


def is_manifest(path: Path, manifest_format: str) -> bool:
    """Whether ``path`` is a JSON file whose ``format`` is ``manifest_format``."""
    if not (path.is_file() and path.suffix == ".json"):
        return False
    try:
        found = read_json(path)
    except MiriskError:
        return False
    return isinstance(found, dict) and found.get("format") == manifest_format


def read_fields(path: Path, manifest_format: str, what: str, required: tuple[str, ...],
                known: frozenset[str]) -> dict[str, Any]:
    """The manifest at ``path`` as a dict, refused in one line unless it says ``manifest_format``,
    has every ``required`` field and only ``known`` ones."""
    manifest = read_json(path)
    if not isinstance(manifest, dict) or manifest.get("format") != manifest_format:
        raise MiriskError(f"{path} is not a {what} manifest (\"format\": \"{manifest_format}\")")
    unknown, missing = sorted(set(manifest) - known), [key for key in required if key not in manifest]
    if unknown or missing:
        raise MiriskError(f"{path}: " + "; ".join(filter(None, [
            f"unknown field(s) {', '.join(unknown)}" if unknown else "",
            f"missing field(s) {', '.join(missing)}" if missing else ""])))
    return manifest


def read_ids(path: Path, what: str) -> list[str]:
    """The ids in a text file, one per line, each at most once."""
    if not path.is_file():
        raise MiriskError(f"the manifest's training-{what} file {path} does not exist")
    ids = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not ids or len(set(ids)) != len(ids):
        raise MiriskError(f"{path} must list each training {what}'s id once, one per line")
    return ids
