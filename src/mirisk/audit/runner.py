"""Run an audit plan's attack units: in this process on the loaded subject, or as JSON tasks
of a backend (Ray) that load it again from its origin. With an output folder, a unit whose
result is there for the same plan is read back, not re-run, and each new result is written
(atomically, result.json last) as it finishes, so a stopped audit resumes."""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mirisk.artifacts import prepare_output_dir, read_json, write_bytes, write_json
from mirisk.audit.case import AuditSubject, SubjectOptions, UnitResult
from mirisk.audit.kinds import case_for, load_subject
from mirisk.audit.plan import AttackUnit, AuditPlan
from mirisk.errors import MiriskError
from mirisk.execution.backends import Backend, LocalBackend
from mirisk.models.imported import ImportSpec

UNIT_RESULT = "result.json"
EVIDENCE_FILES = "evidence_files"  # result.json's list of the unit's other files, all written by mirisk
OnUnit = Callable[[AttackUnit, bool], None]


def stored_result(folder: Path, unit: AttackUnit, fingerprint: str) -> UnitResult | None:
    """The result of ``unit`` in ``folder`` for this plan, with its evidence files; None when
    absent. A torn or foreign result.json is moved aside (never deleted), so the unit reruns."""
    path = folder / UNIT_RESULT
    if not path.is_file():
        return None
    try:
        document = read_json(path)
        if not isinstance(document, dict):
            raise MiriskError(f"{path} is not a JSON object")
    except MiriskError:
        path.rename(folder / f"{UNIT_RESULT}.unreadable-{time.strftime('%Y%m%dT%H%M%S')}")
        return None
    listed = document.pop(EVIDENCE_FILES, None)
    files = {item.name: item.read_bytes() for item in folder.iterdir()
             if item.is_file() and item.name != UNIT_RESULT and not item.name.startswith(f"{UNIT_RESULT}.")
             and (listed is None or item.name in listed)}
    return UnitResult.from_json(document, unit, fingerprint, files)


def discard_unit_files(folder: Path) -> None:
    """Delete what mirisk wrote in a unit's folder (its result.json and the evidence files it
    lists); any other file stays, and so does the folder while it holds one."""
    path = folder / UNIT_RESULT
    try:
        document = read_json(path) if path.is_file() else {}
    except MiriskError:
        document = {}
    listed = document.get(EVIDENCE_FILES, []) if isinstance(document, dict) else []
    for name in {UNIT_RESULT, *(str(item) for item in listed if Path(str(item)).name == str(item))}:
        (folder / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()


def save_unit(out_dir: Path, result: UnitResult, fingerprint: str) -> None:
    """Write one unit's evidence files, then its result.json (owner-only, atomically)."""
    folder = prepare_output_dir(out_dir / "attacks" / result.unit.id, force=True)
    for name, content in result.files.items():
        write_bytes(folder / name, content)
    write_json(folder / UNIT_RESULT, {**result.to_json(fingerprint), EVIDENCE_FILES: sorted(result.files)})


def execute_units(units: list[AttackUnit], plan: AuditPlan, subject: AuditSubject, redact: bool,
                  backend: Backend | None = None, settings: dict[str, Any] | None = None,
                  on_result: Callable[[UnitResult], None] | None = None) -> list[UnitResult]:
    """Run ``units`` of ``plan`` (with ``settings``, default the plan's) on ``subject``, in order.
    In this process the loaded subject is used as it is; a remote backend gets JSON tasks and
    loads the subject from its origin. A unit that attacks a live gateway always runs here."""
    backend = backend or LocalBackend()
    settings = plan.settings if settings is None else settings
    case = case_for(plan.model_kind)
    results: dict[int, UnitResult] = {}

    def finish(index: int, payload: dict[str, Any], files: dict[str, bytes]) -> None:
        results[index] = UnitResult(units[index], payload, files)
        if on_result is not None:
            on_result(results[index])

    here = [index for index, unit in enumerate(units) if backend.in_process or unit.params.get("gateway")]
    remote = [index for index in range(len(units)) if index not in here]
    with backend.threads():
        for index in here:
            finish(index, *case.run_unit(units[index], settings, subject, redact))
    if remote:
        if subject.origin is None:
            raise MiriskError(f"the {backend.name} backend loads the model from its files; this model was handed in "
                              "as an object: save it first, or audit it with the local backend")
        documents = [{"origin": subject.origin, "unit": units[index].as_dict(), "model_kind": plan.model_kind,
                      "settings": settings, "redact": redact} for index in remote]
        backend.map("audit-unit", documents, on_result=lambda position, result: finish(
            remote[position], result["payload"],
            {name: base64.b64decode(text) for name, text in result["files"].items()}))
    return [results[index] for index in range(len(units))]


def run_units(plan: AuditPlan, subject: AuditSubject, out_dir: Path | None, redact: bool,
              on_unit: OnUnit | None = None, backend: Backend | None = None) -> dict[str, UnitResult]:
    """Each unit's result, by id: read back from ``out_dir`` when it holds this plan's
    result, run otherwise (and written there as it finishes). Without ``out_dir`` nothing
    touches the disk."""
    fingerprint = plan.fingerprint()
    found: dict[str, UnitResult] = {}
    if out_dir is not None:
        prepare_output_dir(out_dir / "attacks", force=True)
        for unit in plan.units:
            stored = stored_result(out_dir / "attacks" / unit.id, unit, fingerprint)
            if stored is not None:
                found[unit.id] = stored
                if on_unit is not None:
                    on_unit(unit, True)

    def store(result: UnitResult) -> None:
        if out_dir is not None:
            save_unit(out_dir, result, fingerprint)
        found[result.unit.id] = result
        if on_unit is not None:
            on_unit(result.unit, False)

    pending = [unit for unit in plan.units if unit.id not in found]
    execute_units(pending, plan, subject, redact, backend, on_result=store)
    return {unit.id: found[unit.id] for unit in plan.units}


def run_unit_task(task: dict[str, Any]) -> dict[str, Any]:
    """One audit unit as a backend task: load the subject from its origin, run the unit, and
    return its payload and files (base64), which the audit writes owner-only."""
    origin = task["origin"]
    spec = None if origin["spec"] is None else ImportSpec.from_options(origin["spec"])
    options = SubjectOptions(origin["aux"], origin["sensitive"],
                             None if origin["known"] is None else tuple(origin["known"]), spec)
    subject = load_subject(origin["model"], origin["data"], options)
    payload, files = case_for(task["model_kind"]).run_unit(AttackUnit.from_dict(task["unit"]), task["settings"],
                                                           subject, task["redact"])
    return {"payload": payload, "files": {name: base64.b64encode(content).decode() for name, content in files.items()}}
