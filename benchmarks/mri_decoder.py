"""Decoder inversion of brain-MRI segmentation models on the IXI slices, in the paper's protocol
(40 subjects, 4 folds of 10 private / 30 decoder subjects): U-Net and SegNet, probability
maps vs hard labels, logits, and an overfit vs a regularised target.

Run: ``python benchmarks/mri_decoder.py [--decoder-epochs 200] [--runs unet:probs ...]``
(about 6 minutes per run on 2 cores with the defaults). Results are appended run by run to
``benchmarks/results/mri_decoder.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mirisk.attacks.decoder import DecoderSettings
from mirisk.data.mri import load_mri
from mirisk.pipelines.mri import REGULARISED_SEGMENTER, SegmenterSettings, decoder_protocol

RUNS = ("unet:probs", "unet:labels", "segnet:probs", "segnet:labels", "unet:logits", "unet:probs:regularised")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", nargs="+", default=list(RUNS), help="arch:output[:regularised]")
    parser.add_argument("--decoder-epochs", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=SegmenterSettings().epochs, help="Target epochs.")
    parser.add_argument("--out", default="benchmarks/results/mri_decoder.json")
    args = parser.parse_args()
    data = load_mri(None, slices=1, groups="tissue")
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {"runs": []}
    for run in args.runs:
        arch, output, *variant = run.split(":")
        segmenter = REGULARISED_SEGMENTER if variant == ["regularised"] else SegmenterSettings(epochs=args.epochs)
        report = decoder_protocol(data, arch, output, folds=4, n_subjects=40, segmenter=segmenter,
                                  decoder=DecoderSettings(epochs=args.decoder_epochs))
        metrics = report.payload["metrics"]
        print(f"{run}: SSIM {metrics['ssim_mean']:.3f} ± {metrics['ssim_std']:.3f} (brain "
              f"{metrics['ssim_brain_mean']:.3f} ± {metrics['ssim_brain_std']:.3f}), re-ID top-1 "
              f"{metrics['reid_top1']:.1%} (top-5 {metrics['reid_top5']:.1%}), Dice {metrics['target_train_dice']:.2f}"
              f" / {metrics['target_held_out_dice']:.2f}, {report.payload['seconds']:.0f} s", flush=True)
        payload = {key: value for key, value in report.payload.items() if key != "versions"}
        results["runs"] = [r for r in results["runs"] if r["run"] != run] + [
            {"run": run, "date": time.strftime("%Y-%m-%d"), **payload, "versions": report.payload["versions"]}]
        out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
