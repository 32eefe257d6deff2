"""Figures for people: reconstructions beside the real photos."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _display(image: np.ndarray, stretch: bool) -> np.ndarray:
    picture = image.transpose(1, 2, 0) if image.shape[0] == 3 else image[0]
    if stretch:
        low, high = np.percentile(picture, [1, 99])
        picture = np.clip((picture - low) / max(high - low, 1e-8), 0, 1)
    return picture


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
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    return buffer.getvalue()
