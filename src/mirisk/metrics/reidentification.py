"""What an attack that rebuilds a record, not a face from a name, reached, typed: a decoder
inverting a segmenter's outputs (a patient's scan) and a gradient attack on a federated
round (a client's images). Both are judged by re-identifying the rebuilt record among
everyone's other records; chance is one in the number of candidates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


class RebuiltRecord:
    """What both kinds share: re-identification above chance, and the numbers the
    report's attack table shows (``HEADLINE``, in order)."""

    HEADLINE: ClassVar[tuple[str, ...]]
    reid_top1: float
    chance_top1: float

    @property
    def excess(self) -> float:
        """Re-identification above chance."""
        return self.reid_top1 - self.chance_top1

    def headline(self) -> dict[str, float]:
        """The numbers the report's attack table shows."""
        return {key: getattr(self, key) for key in self.HEADLINE}


@dataclass(frozen=True)
class ScanReidentification(RebuiltRecord):
    """A decoder attack on a segmenter: how often the true patient ranks first among all
    subjects by their other scans, and how close the rebuilt scan is to the original."""

    reid_top1: float
    reid_top1_ci: tuple[float, float]
    reid_top5: float
    ssim_mean: float
    ssim_brain_mean: float
    chance_top1: float
    HEADLINE = ("reid_top1", "reid_top5", "ssim_mean", "ssim_brain_mean", "chance_top1")

    @classmethod
    def from_json(cls, metrics: dict[str, Any]) -> ScanReidentification:
        """From a decoder unit's ``metrics`` in result.json."""
        return cls(**{**{key: metrics[key] for key in cls.__dataclass_fields__},
                      "reid_top1_ci": tuple(metrics["reid_top1_ci"])})


@dataclass(frozen=True)
class RoundReconstruction(RebuiltRecord):
    """A gradient attack on one federated round: re-identification of the client's images
    among everyone's other photos, their SSIM and PSNR to the originals, the labels
    recovered, and the independent judge's top-1 and face rate where it ran (None: the
    images are not faces it can judge)."""

    reid_top1: float
    reid_top1_ci: tuple[float, float]
    ssim_mean: float
    psnr_mean: float
    label_accuracy: float
    chance_top1: float
    judge_top1: float | None
    judge_face_rate: float | None
    HEADLINE = ("reid_top1", "ssim_mean", "psnr_mean", "label_accuracy", "chance_top1")

    @classmethod
    def from_json(cls, metrics: dict[str, Any]) -> RoundReconstruction:
        """From a gradient unit's ``metrics`` in result.json."""
        judge = metrics.get("independent")
        return cls(reid_top1=metrics["reid_top1"], reid_top1_ci=tuple(metrics["reid_top1_ci"]),
                   ssim_mean=metrics["ssim_mean"], psnr_mean=metrics["psnr_mean"],
                   label_accuracy=metrics["label_accuracy"], chance_top1=metrics["chance_top1"],
                   judge_top1=None if judge is None else judge["identification_top1"],
                   judge_face_rate=None if judge is None else judge["face_rate"])
