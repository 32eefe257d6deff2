"""`mirisk audit --backend ray` on a two-node cluster gives the report of the local backend
(the in-memory path against the JSON tasks a Ray worker gets)."""

import json
import stat

from typer.testing import CliRunner

from mirisk.cli import app
from mirisk.models import save_target

runner = CliRunner()


def test_an_audit_on_ray_matches_the_local_backend(ray_cluster, targets, tmp_path):
    softmax_dir = save_target(targets["softmax"], tmp_path / "softmax")
    config = tmp_path / "audit.toml"
    config.write_text("miface_iterations = 10\nepsilons = []\npeople = 10\n")
    common = ["audit", "--model", str(softmax_dir), "--config", str(config), "--access", "white-box",
              "--cpus-per-task", "1"]
    local = runner.invoke(app, [*common, "--out", str(tmp_path / "local")])
    on_ray = runner.invoke(app, [*common, "--backend", "ray", "--address", ray_cluster.address,
                                 "--out", str(tmp_path / "ray")])
    assert local.exit_code == 0 and on_ray.exit_code == 0, local.output + on_ray.output
    reports = [json.loads((tmp_path / name / "report.json").read_text()) for name in ("local", "ray")]
    timeless = [[{k: v for k, v in attack.items() if k != "seconds"} for attack in report["attacks"]]
                for report in reports]
    assert timeless[0] == timeless[1] and reports[0]["verdict"] == reports[1]["verdict"]
    images = [(tmp_path / name / "attacks" / "white-box-miface" / "reconstructions.npz") for name in ("local", "ray")]
    assert images[0].read_bytes() == images[1].read_bytes()
    assert stat.S_IMODE(images[1].stat().st_mode) == 0o600
