"""The audit folder: --force discards mirisk's own results, never what a link points at."""

import json

from mirisk.audit.run import PLAN_JSON, REPORT_JSON, prepare_audit_dir
from mirisk.audit.runner import EVIDENCE_FILES


def test_force_removes_a_linked_attacks_folder_as_a_link_only(tmp_path):
    out, elsewhere = tmp_path / "audit", tmp_path / "users-data"
    out.mkdir()
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("the user's file")
    (out / PLAN_JSON).write_text("{}")
    (out / REPORT_JSON).write_text("{}")
    (out / "attacks").symlink_to(elsewhere, target_is_directory=True)
    prepare_audit_dir(out, force=True)
    assert not (out / "attacks").exists() and not (out / REPORT_JSON).exists()
    assert (elsewhere / "keep.txt").read_text() == "the user's file"


def test_force_deletes_only_the_files_mirisk_wrote(tmp_path):
    """A user's notes inside attacks/ and defences/ survive --force; mirisk's own files go."""
    out = tmp_path / "audit"
    unit = out / "attacks" / "white-box-miface"
    unit.mkdir(parents=True)
    (out / PLAN_JSON).write_text("{}")
    (out / REPORT_JSON).write_text("{}")
    (unit / "reconstructions.npz").write_bytes(b"evidence")
    (unit / "result.json").write_text(json.dumps({EVIDENCE_FILES: ["reconstructions.npz"]}))
    (unit / "my-notes.txt").write_text("the user's notes")
    (out / "attacks" / "readme.txt").write_text("the user's readme")
    (out / "defences").mkdir()
    (out / "defences" / "dp_sweep.json").write_text("{}")
    (out / "defences" / "budget.xlsx").write_bytes(b"the user's sheet")
    other = out / "attacks" / "written-by-mirisk-only"
    other.mkdir()
    (other / "result.json").write_text(json.dumps({EVIDENCE_FILES: []}))
    prepare_audit_dir(out, force=True)
    assert sorted(str(path.relative_to(out)) for path in out.rglob("*") if path.is_file()) == [
        "attacks/readme.txt", "attacks/white-box-miface/my-notes.txt", "defences/budget.xlsx"]
    assert not other.exists() and not (out / PLAN_JSON).exists()
