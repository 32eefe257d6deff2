"""The unit runner: stored results are read back only for the same plan; a torn one is moved
aside so the unit reruns, and nothing is deleted."""

from mirisk.audit.case import UnitResult
from mirisk.audit.kinds import build_plan
from mirisk.audit.plan import parse_accesses
from mirisk.audit.runner import UNIT_RESULT, save_unit, stored_result


def test_a_saved_unit_is_read_back_with_its_files_only_for_its_own_plan(tmp_path):
    plan = build_plan("image", parse_accesses("scores"), None, {})
    unit = plan.units[0]
    save_unit(tmp_path, UnitResult(unit, {"metrics": {"reid_top1": 0.5}}, {"lineup.png": b"png"}), plan.fingerprint())
    found = stored_result(tmp_path / "attacks" / unit.id, unit, plan.fingerprint())
    assert found.resumed and found.metrics == {"reid_top1": 0.5} and found.files == {"lineup.png": b"png"}
    other = build_plan("image", parse_accesses("scores"), 10, {})
    assert stored_result(tmp_path / "attacks" / unit.id, unit, other.fingerprint()) is None


def test_a_torn_result_is_moved_aside_and_the_unit_reruns(tmp_path):
    plan = build_plan("image", parse_accesses("scores"), None, {})
    unit = plan.units[0]
    folder = tmp_path / unit.id
    folder.mkdir()
    (folder / UNIT_RESULT).write_text('{"metrics": {"reid_top')  # a crash mid-write by an older mirisk
    assert stored_result(folder, unit, plan.fingerprint()) is None
    kept = [path for path in folder.iterdir() if path.name.startswith(f"{UNIT_RESULT}.unreadable-")]
    assert len(kept) == 1 and kept[0].read_text() == '{"metrics": {"reid_top'
    assert not (folder / UNIT_RESULT).exists()
