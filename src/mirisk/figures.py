"""Figures for people: reconstructions beside the real photos."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402


def _display(image: np.ndarray, stretch: bool) -> np.ndarray:
    picture = image.transpose(1, 2, 0) if image.shape[0] == 3 else image[0]
    if stretch:
        low, high = np.percentile(picture, [1, 99])
        picture = np.clip((picture - low) / max(high - low, 1e-8), 0, 1)
    return picture


def png_bytes(figure, dpi: int = 90) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    plt.close(figure)
    return buffer.getvalue()


def reconstruction_grid(
    originals: np.ndarray,
    reconstructions: np.ndarray,
    titles: list[str],
    per_row: int = 8,
    heading: str = "",
) -> bytes:
    """PNG bytes: for each target, its real photo above the reconstruction (contrast-stretched
    for display only; the arrays written beside it are the raw reconstructions)."""
    n = len(reconstructions)
    rows = -(-n // per_row)
    figure, axes = plt.subplots(2 * rows, per_row, figsize=(1.3 * per_row, 3.2 * rows), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for i in range(n):
        row, column = 2 * (i // per_row), i % per_row
        axes[row, column].imshow(_display(originals[i], False), cmap="gray", vmin=0, vmax=1)
        axes[row, column].set_title(titles[i], fontsize=7)
        axes[row + 1, column].imshow(_display(reconstructions[i], True), cmap="gray")
    if heading:
        figure.suptitle(heading, fontsize=9)
    figure.tight_layout(rect=(0, 0, 1, 0.98))
    return png_bytes(figure, dpi=80)


def lineup_grid(reconstructions: np.ndarray, candidates: np.ndarray, correct: np.ndarray, names: list[list[str]],
                people: list[str], per_row: int = 2, heading: str = "") -> bytes:
    """PNG bytes: each reconstruction beside the five people the independent judge ranks
    nearest (one held-out photo each, nearest first); the true person is framed in red.
    This is the human-judge setting of Fredrikson et al. (2015): can a person pick them out?
    ``candidates`` is ``[T, 5, C, H, W]``, ``correct`` ``[T, 5]`` booleans. Drawn with PIL on
    one canvas (a figure of hundreds of subplots costs seconds)."""
    n, size = len(reconstructions), candidates.shape[1]
    height, width = reconstructions.shape[-2:]
    label, gap, frame = 14, 8, 3
    cell_w, cell_h = width + 2 * frame, height + 2 * frame + label
    group_w = (size + 1) * cell_w + gap
    rows = -(-n // per_row)
    top = 20 if heading else 0
    canvas = Image.new("RGB", (per_row * group_w, top + rows * cell_h), "white")
    draw = ImageDraw.Draw(canvas)
    if heading:
        draw.text((4, 4), heading, fill="black")

    def paste(image: np.ndarray, stretch: bool, x: int, y: int, caption: str, colour: str | None) -> None:
        picture = np.clip(_display(image, stretch), 0, 1)
        tile = Image.fromarray(np.round(picture * 255).astype(np.uint8)).convert("RGB")
        if colour:
            draw.rectangle((x, y + label, x + cell_w - 1, y + cell_h - 1), fill=colour)
        canvas.paste(tile, (x + frame, y + label + frame))
        draw.text((x + frame, y + 1), caption, fill=colour or "black")

    for i in range(n):
        x, y = (i % per_row) * group_w, top + (i // per_row) * cell_h
        paste(reconstructions[i], True, x, y, f"{people[i]}?", None)
        for j in range(size):
            paste(candidates[i, j], False, x + (j + 1) * cell_w, y, names[i][j], "#b22222" if correct[i, j] else None)
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()


ATTACK_COLUMNS = (("white-box", "white-box MI-Face"), ("blackbox-scores", "score black-box"),
                  ("labelonly", "label-only"))


def policy_matrix_heatmap(matrix: dict) -> bytes:
    """PNG bytes: re-identification top-1 from held-out photos per policy (rows) and attack
    (columns), the independent judge's top-1 in brackets, with the policy's accuracy for
    legitimate users beside each row."""
    rows = matrix["rows"]
    values = np.array([[row[key]["reid_top1"] for key, _ in ATTACK_COLUMNS] for row in rows])
    judged = np.array([[row[key]["judge_top1"] for key, _ in ATTACK_COLUMNS] for row in rows])
    figure, axis = plt.subplots(figsize=(7.5, 0.45 * len(rows) + 1.6))
    image = axis.imshow(values, cmap="Reds", vmin=0, vmax=1, aspect="auto")
    for (i, j), value in np.ndenumerate(values):
        axis.text(j, i, f"{value:.0%} ({judged[i, j]:.0%})", ha="center", va="center",
                  color="white" if value > 0.6 else "black", fontsize=9)
    axis.set_xticks(range(len(ATTACK_COLUMNS)), [label for _, label in ATTACK_COLUMNS])
    axis.set_yticks(range(len(rows)), [f"{row['policy']} (acc. {row['cost']['accuracy']:.0%})" for row in rows])
    axis.set_title(f"{matrix['model']['architecture']}: re-ID top-1 from held-out photos (judge top-1)\n"
                   f"chance {matrix['chance_top1']:.1%}", fontsize=10)
    figure.colorbar(image, ax=axis, fraction=0.04)
    figure.tight_layout()
    return png_bytes(figure)


def privacy_sweep_plot(
    epsilons: list[float | None],
    risks: dict[str, list[float]],
    utility: tuple[str, list[float]],
    reference_lines: dict[str, float],
    title: str,
) -> bytes:
    """PNG bytes: attack success per epsilon (left axis, one line per attack, dashed
    reference levels such as the prior-only baseline) and the model's utility (right axis).
    ``None`` in ``epsilons`` is the non-private model, drawn at the right end."""
    finite = [e for e in epsilons if e is not None]
    far = max(finite) * 4 if finite else 1.0
    positions = [far if e is None else e for e in epsilons]
    figure, axis = plt.subplots(figsize=(7, 4))
    for label, values in risks.items():
        axis.plot(positions, values, marker="o", label=label)
    for label, level in reference_lines.items():
        axis.axhline(level, linestyle="--", linewidth=1, color="grey")
        axis.text(positions[0], level, f" {label}", va="bottom", fontsize=8, color="grey")
    axis.set_xscale("log")
    axis.set_xticks(positions, ["∞" if e is None else f"{e:g}" for e in epsilons])
    axis.minorticks_off()
    axis.set_xlabel("privacy budget ε (smaller = more private)")
    axis.set_ylabel("attack accuracy")
    right = axis.twinx()
    right.plot(positions, utility[1], marker="s", color="black", linestyle=":", label=utility[0])
    right.set_ylabel(utility[0])
    lines = axis.get_legend_handles_labels()
    extra = right.get_legend_handles_labels()
    axis.legend(lines[0] + extra[0], lines[1] + extra[1], fontsize=8, loc="best")
    axis.set_title(title, fontsize=10)
    figure.tight_layout()
    return png_bytes(figure)


def defence_sweep_plot(points: list[dict], attacks: tuple[str, ...], title: str) -> bytes:
    """PNG bytes: per defence (x, in sweep order), identification top-1 by each attack
    (left) and test accuracy (right), one line per training-set size."""
    labels = list(dict.fromkeys(point["defence"] for point in points))
    sizes = sorted({point["n_train"] for point in points})
    figure, (risk, utility) = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    for size in sizes:
        row = {point["defence"]: point for point in points if point["n_train"] == size}
        x = [labels.index(label) for label in row]
        for attack, marker in zip(attacks, "os^v", strict=False):
            risk.plot(x, [point[attack]["identification_top1"] for point in row.values()], marker=marker,
                      label=f"{attack}, {size}/person")
        utility.plot(x, [point["test_accuracy"] for point in row.values()], marker="s", label=f"{size}/person")
    risk.axhline(points[0]["chance_top1"], linestyle="--", linewidth=1, color="grey")
    risk.text(0, points[0]["chance_top1"], " chance", va="bottom", fontsize=8, color="grey")
    risk.set_ylabel("identification top-1 of the reconstructions")
    utility.set_ylabel("test accuracy")
    for axis in (risk, utility):
        axis.set_ylim(0, 1.05)
        axis.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
        axis.legend(fontsize=7, loc="best")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return png_bytes(figure)
