"""Bad input as a user meets it: `mirisk` run as a process on each documented bad input,
across the commands. Each must exit with status 2, print one line on stderr that names the
problem (a usage error may add its usage line), show no traceback, and leave what the user
owned as it was."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image

from mirisk.data.dicom_write import write_series
from mirisk.data.mri import load_bundled_slices
from mirisk.models.tabular_store import save_tabular_target

MIRISK = str(Path(sys.executable).parent / "mirisk")
BIG = "99999999999999999999"


@dataclass(frozen=True)
class Case:
    """One bad input: the arguments (``{name}`` is a prepared path), the words the error
    line must hold, and the user's file that must survive unchanged (if any)."""

    arguments: str
    message: str
    kept: str | None = None


CASES = {
    "train faces: a seed past 2**32-1": Case("train faces --model softmax --out {new} --seed " + BIG,
                                             "--seed must be at most 4,294,967,295"),
    "train faces: a negative seed": Case("train faces --model softmax --out {new} --seed -1",
                                         "--seed must be at least 0"),
    "train prior: a seed past 2**32-1": Case("train prior --out {new} --seed " + BIG, "--seed must be at most"),
    "attack miface: a seed past 2**32-1": Case("attack miface --model {model} --out {new} --seed " + BIG,
                                               "--seed must be at most"),
    "attack decoder: a seed past 2**32-1": Case("attack decoder --out {new} --seed " + BIG, "--seed must be at most"),
    "attack gradients: a negative seed": Case("attack gradients --out {new} --seed -1", "--seed must be at least 0"),
    "audit: a seed past 2**32-1 in the config": Case("audit --model {model} --out {new} --config {seed_toml}",
                                                     "seed must be at most 4,294,967,295"),
    "audit: a budget of nan in the config": Case("audit --model {model} --out {new} --config {nan_toml}",
                                                 "the query budget must be a whole number, got nan"),
    "audit: a budget of inf in the config": Case("audit --model {model} --out {new} --config {inf_toml}",
                                                 "the query budget must be a whole number, got inf"),
    "audit: a budget of 2.5 in the config": Case("audit --model {model} --out {new} --config {half_toml}",
                                                 "the query budget must be a whole number, got 2.5"),
    "audit: redact as text in the config": Case("audit --model {model} --out {new} --config {redact_toml}",
                                                "redact must be true or false, got 'yes'"),
    "audit: an unknown access level": Case("audit --model {model} --out {new} --access gray-box",
                                           "unknown access level"),
    "audit: an unknown --fail-on level": Case("audit --model {model} --out {new} --fail-on severe",
                                              "--fail-on must be one of"),
    "audit: a manifest nested 100,000 deep": Case("audit --model {deep_json} --out {new}", "nested too deeply"),
    "audit: a manifest whose id_column is a list": Case("audit --model {id_list_json} --out {new}",
                                                        "id_column must be a name (a non-empty string), got ['a']"),
    "audit: a manifest that is not JSON": Case("audit --model {broken_json} --out {new} --data {broken_json}",
                                               "is not valid JSON"),
    "audit: a model that does not exist": Case("audit --model {new}/model --out {new}", "model not found"),
    "train faces: a PNG decompression bomb": Case("train faces --model softmax --out {new} --data {bomb}",
                                                  "could be decompression bomb"),
    "train faces: --out a dangling link": Case("train faces --model softmax --out {dangling}",
                                               "which does not exist; give a real folder"),
    "train prior: 4 x 4 photos": Case("train prior --out {new} --data {tiny} --steps 2",
                                      "at least 32 x 32 pixels"),
    "train prior: a checkpoint.json that is not mirisk's": Case(
        "train prior --out {user_checkpoint} --data bundled:att_faces_public --steps 2", "is not valid JSON",
        kept="user_checkpoint/checkpoint.json"),
    "train segmenter: a 150-byte .nii.gz declaring 8 GiB": Case(
        "train segmenter --out {new} --images {nifti_bomb} --labels {nifti_labels}",
        "declares 1024x1024x1000 voxels of float64"),
    "train segmenter: DICOM RescaleSlope 1e308": Case(
        "train segmenter --out {new} --images {dicom_slope} --labels {dicom_labels}",
        "takes pixel values past the range of float32"),
    "train segmenter: DICOM position NaN": Case(
        "train segmenter --out {new} --images {dicom_nan} --labels {dicom_labels}",
        "ImagePositionPatient is [nan, nan, nan]"),
    "train segmenter: DICOM file cut short": Case(
        "train segmenter --out {new} --images {dicom_truncated} --labels {dicom_labels}", "cut short"),
    "train segmenter: DICOM Rows 65535": Case(
        "train segmenter --out {new} --images {dicom_rows} --labels {dicom_labels}", "declares a 65535 x"),
    "train segmenter: DICOM BitsAllocated 12": Case(
        "train segmenter --out {new} --images {dicom_bits} --labels {dicom_labels}", "declares 12 bits a pixel"),
    "train segmenter: DICOM Rows 0": Case(
        "train segmenter --out {new} --images {dicom_rows0} --labels {dicom_labels}", "declares a 0 x 120 slice"),
    "train segmenter: DICOM orientation of 3 values": Case(
        "train segmenter --out {new} --images {dicom_orientation3} --labels {dicom_labels}",
        "ImageOrientationPatient is [1.0, 0.0, 0.0]; it needs 6 finite numbers"),
    "train segmenter: DICOM orientation not numbers": Case(
        "train segmenter --out {new} --images {dicom_orientation_text} --labels {dicom_labels}",
        "ImageOrientationPatient is ['a', 'b', 'c', 'd', 'e', 'f']; it needs 6 numbers"),
    "train segmenter: DICOM without PixelData": Case(
        "train segmenter --out {new} --images {dicom_no_pixels} --labels {dicom_labels}", "has no PixelData"),
    "train segmenter: DICOM short PixelData": Case(
        "train segmenter --out {new} --images {dicom_short_pixels} --labels {dicom_labels}",
        "bytes of pixel data where its header declares 28,800"),
    "attack miface: a learning rate of 1e308": Case(
        "attack miface --model {model} --out {new} --learning-rate 1e308 --iterations 2", "within float32's range"),
    "attack attribute: a budget of 1": Case("attack attribute --model {iwpc} --out {new} --budget 1",
                                            "past the budget of 1"),
    "attack blackbox: a policy that does not parse": Case("attack blackbox --model {model} --out {new} "
                                                          "--policy topk:x", "topk:x"),
    "attack blackbox: an import shape with a negative side": Case(
        "attack blackbox --model {model_file} --out {new} --input-shape 1,-112,92", "--input-shape must be C,H,W"),
    "sweep faces: an epsilon that is not a number": Case("sweep faces --out {new} --epsilons abc",
                                                         "epsilons must be positive numbers"),
    "keys create: a window of 10^20 days": Case("keys create --db {keys_db} --window " + BIG + "d --budget 5",
                                                "window must be at most 3650d"),
    "keys revoke: a key that does not exist": Case("keys revoke --db {keys_db} 000000000000",
                                                   "no key with id '000000000000'"),
    "keys backup: onto a file that exists": Case("keys backup --db {keys_db} --out {user_file}",
                                                 "already exists", kept="user_file"),
    "keys list: a database that does not exist": Case("keys list --db {new}/gateway.db", "does not exist"),
    "serve: a port past 65535": Case("serve --model {model} --db {keys_db} --port 99999",
                                     "--port must be between 1 and 65535"),
    "report: a folder without report.json": Case("report {empty}", "no report.json in"),
    "train faces: an unknown option": Case("train faces --out {new} --bogus", "No such option: --bogus"),
}


def _dicom_series(root: Path, damage: str) -> Path:
    """Three bundled IXI subjects as DICOM series, one slice of the first damaged."""
    bundled = load_bundled_slices(slices=5, groups="tissue")
    for index, subject in enumerate(("IXI001", "IXI002", "IXI003")):
        volume = np.moveaxis(np.round(bundled.images[5 * index:5 * index + 5, 0] * 4000), 0, 2)
        write_series(volume, root / subject, subject)
    path = sorted((root / "IXI001").iterdir())[2]
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:2000])
        return root
    targets = sorted((root / "IXI001").iterdir()) if damage == "nan" else [path]
    for target in targets:
        dataset = pydicom.dcmread(target)
        if damage == "slope":
            dataset.RescaleSlope = "1e308"
        elif damage == "nan":
            dataset.add_new("ImagePositionPatient", "LO", ["nan"] * 3)
        elif damage in ("rows", "rows0"):
            dataset.Rows = 65535 if damage == "rows" else 0
        elif damage == "orientation3":
            dataset.ImageOrientationPatient = [1, 0, 0]
        elif damage == "orientation_text":
            dataset.add_new("ImageOrientationPatient", "LO", ["a", "b", "c", "d", "e", "f"])
        elif damage == "no_pixels":
            del dataset.PixelData
        elif damage == "short_pixels":
            dataset.PixelData = dataset.PixelData[:1000]
        else:
            dataset.BitsAllocated = 12
        dataset.save_as(target)
    return root


@pytest.fixture(scope="module")
def paths(tmp_path_factory, served_model, iwpc_linear) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad_input")
    paths = {"model": served_model, "iwpc": save_tabular_target(iwpc_linear, root / "iwpc"), "empty": root / "empty"}
    paths["empty"].mkdir()
    for name, line in (("seed_toml", f"seed = {BIG}"), ("nan_toml", "budget = nan"), ("inf_toml", "budget = inf"),
                       ("half_toml", "budget = 2.5"), ("redact_toml", 'redact = "yes"')):
        paths[name] = root / f"{name}.toml"
        paths[name].write_text(line + "\n")
    paths["deep_json"] = root / "deep.json"
    paths["deep_json"].write_text("[" * 100_000 + "]" * 100_000)
    paths["id_list_json"] = root / "id_list.json"
    paths["id_list_json"].write_text(json.dumps({
        "format": "mirisk-tabular-manifest/1", "model": "m.onnx", "numeric": {"age": [0, 100]}, "categorical": {},
        "target": "dose", "id_column": ["a"], "train_column": "trained"}))
    paths["broken_json"] = root / "broken.json"
    paths["broken_json"].write_text('{"format": "mirisk-tab')
    paths["bomb"], paths["tiny"] = root / "bomb", root / "tiny"
    for person in ("ann", "bob"):
        (paths["bomb"] / person).mkdir(parents=True)
        Image.new("L", (20000, 20000)).save(paths["bomb"] / person / "bomb.png")
        (paths["tiny"] / person).mkdir(parents=True)
        for index in range(3):
            Image.new("L", (4, 4), 40 * index).save(paths["tiny"] / person / f"{index}.png")
    paths["dangling"] = root / "dangling"
    paths["dangling"].symlink_to(root / "nowhere" / "at-all")
    paths["user_checkpoint"] = root / "user_checkpoint"
    paths["user_checkpoint"].mkdir()
    (paths["user_checkpoint"] / "checkpoint.json").write_text("my own notes, not JSON\n")
    paths["nifti_bomb"], paths["nifti_labels"] = root / "nifti_bomb", root / "nifti_labels"
    header = nib.Nifti1Header()
    header.set_data_shape((1024, 1024, 1000))
    header.set_data_dtype(np.float64)
    paths["nifti_bomb"].mkdir()
    (paths["nifti_bomb"] / "IXI001_T1.nii.gz").write_bytes(gzip.compress(header.binaryblock + b"\0" * 4))
    paths["nifti_labels"].mkdir()
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), np.eye(4)), paths["nifti_labels"] / "IXI001_seg.nii.gz")
    paths["dicom_labels"] = root / "dicom_labels"
    paths["dicom_labels"].mkdir()
    for subject in ("IXI001", "IXI002", "IXI003"):
        nib.save(nib.Nifti1Image(np.ones((120, 120, 5), np.uint8), np.eye(4)),
                 paths["dicom_labels"] / f"{subject}_seg.nii.gz")
    for damage in ("slope", "nan", "truncated", "rows", "bits", "rows0", "orientation3", "orientation_text",
                   "no_pixels", "short_pixels"):
        paths[f"dicom_{damage}"] = _dicom_series(root / f"dicom_{damage}", damage)
    paths["model_file"] = root / "model.pt"
    paths["model_file"].write_bytes(b"placeholder: refused before it is read")
    paths["keys_db"] = root / "gateway.db"
    subprocess.run([MIRISK, "keys", "create", "--db", str(paths["keys_db"])], check=True, capture_output=True)
    paths["user_file"] = root / "user_file"
    paths["user_file"].write_text("the user's own file\n")
    return paths


def _run(case: Case, paths: dict[str, Path], new: Path) -> subprocess.CompletedProcess[str]:
    arguments = case.arguments.format(new=new, **paths).split()
    environment = {**os.environ, "COLUMNS": "120"}
    return subprocess.run([MIRISK, *arguments], capture_output=True, text=True, timeout=300, env=environment, check=False,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def outcomes(paths, tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess[str], Path, bytes | None]]:
    """Every case run once, two processes at a time (each starts a Python with torch)."""
    root = tmp_path_factory.mktemp("outs")
    kept = {name: (paths[case.kept.split("/")[0]].parent / case.kept).read_bytes() if case.kept else None
            for name, case in CASES.items()}

    def run(index_and_name: tuple[int, str]):
        index, name = index_and_name
        new = root / f"out{index}"
        return name, (_run(CASES[name], paths, new), new, kept[name])

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(run, enumerate(CASES)))


def test_the_table_covers_every_command():
    commands = {" ".join(case.arguments.split()[:2]) for case in CASES.values()}
    for command in ("train faces", "train prior", "train segmenter", "attack miface", "attack blackbox",
                    "attack attribute", "attack decoder", "attack gradients", "audit --model", "sweep faces",
                    "keys create", "keys revoke", "keys backup", "keys list", "serve --model", "report {empty}"):
        assert command in commands, command
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", list(CASES))
def test_each_bad_input_gets_one_line_and_status_2(outcomes, paths, name):
    result, new, kept = outcomes[name]
    case = CASES[name]
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback (most recent call last)" not in result.stderr + result.stdout
    assert lines and lines[0].startswith("error: ") and case.message in lines[0], result.stderr
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("Usage: mirisk ")), result.stderr
    assert not new.exists() or not [path for path in new.rglob("*") if path.is_file()]  # nothing written
    if case.kept:
        assert (paths[case.kept.split("/")[0]].parent / case.kept).read_bytes() == kept  # the user's file as it was
