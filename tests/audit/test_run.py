"""The audit folder: --force discards mirisk's own results, never what a link points at."""

from mirisk.audit.run import PLAN_JSON, REPORT_JSON, prepare_audit_dir


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
