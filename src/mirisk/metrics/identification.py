"""Does a reconstruction identify its person? Four measures, each with its chance level.

1. The independent judge (``mirisk.metrics.face_judge``: dlib's ResNet face descriptor,
   trained elsewhere on millions of faces) names the person by the nearest centroid of each
   person's *held-out* photos; top-1, top-5, rank, face rate, with Wilson intervals. This
   is the number verdicts rest on.
2. The pixel evaluator (eigenfaces: PCA + logistic regression; Turk & Pentland 1991),
   trained on the held-out photos: a pixel-space judge that a reconstruction can fool
   (Ho et al. 2025), kept under its own name beside the judge, with their disagreement.
3. Re-identification as an attacker could do it: every person is ranked by the best pixel
   correlation (and SSIM) of any of their *held-out* photos to the reconstruction, never by
   the photos the model was trained on (that ranking is kept as a labelled diagnostic).
4. SSIM and PSNR of each reconstruction to its person's closest training photo.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer

from mirisk.metrics.face_judge import DESCRIPTION as JUDGE_DESCRIPTION
from mirisk.metrics.face_judge import FaceEmbeddings, centroid_scores
from mirisk.metrics.image import correlation_matrix, psnr, ssim, ssim_matrix
from mirisk.metrics.intervals import wilson_interval


def top_k_hits(scores: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Whether each row's true label is among its ``k`` highest scores."""
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return (top == labels[:, None]).any(axis=1)


def rank_of_true(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """1-based rank of the true label among each row's scores (1 = best)."""
    true = scores[np.arange(len(labels)), labels]
    return 1 + (scores > true[:, None]).sum(axis=1)


def standardise_images(flat: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per image: recognition that ignores brightness and contrast."""
    centred = flat - flat.mean(axis=1, keepdims=True)
    return centred / np.maximum(centred.std(axis=1, keepdims=True), 1e-8)


def chance(n_classes: int, k: int) -> float:
    return min(k, n_classes) / n_classes


@dataclass
class FaceEvaluator:
    """Eigenfaces evaluator, independent of the target: fit it on held-out photos. Each image
    is standardised first, so brightness and contrast do not decide identity."""

    n_components: int = 60
    seed: int = 0

    def fit(self, images: np.ndarray, labels: np.ndarray) -> "FaceEvaluator":
        components = min(self.n_components, len(images) - 1)
        self.pipeline_: Pipeline = make_pipeline(
            FunctionTransformer(standardise_images),
            PCA(n_components=components, whiten=True, random_state=self.seed),
            LogisticRegression(max_iter=2000, C=1.0),
        )
        self.pipeline_.fit(images.reshape(len(images), -1), labels)
        self.n_classes_ = int(labels.max()) + 1
        return self

    def scores(self, images: np.ndarray) -> np.ndarray:
        """``[N, n_classes]`` class probabilities (columns for classes unseen in fitting stay 0)."""
        probabilities = self.pipeline_.predict_proba(images.reshape(len(images), -1))
        full = np.zeros((len(images), self.n_classes_))
        full[:, self.pipeline_.classes_] = probabilities
        return full

    def accuracy(self, images: np.ndarray, labels: np.ndarray) -> float:
        return float((self.scores(images).argmax(1) == labels).mean())


def subject_scores(similarity: torch.Tensor, gallery_labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Reduce a ``[T, gallery]`` similarity matrix to ``[T, n_classes]``: each person's best photo."""
    scores = torch.full((similarity.shape[0], n_classes), -torch.inf, dtype=similarity.dtype)
    index = torch.as_tensor(gallery_labels).expand_as(similarity)
    scores.scatter_reduce_(1, index, similarity, reduce="amax")
    return scores.numpy()


LINEUP_SIZE = 5


@dataclass(frozen=True)
class IndependentIdentification:
    """What the independent judge makes of a batch of reconstructions."""

    identification_top1: float
    identification_top5: float
    identification_top1_ci: tuple[float, float]
    identification_top5_ci: tuple[float, float]
    face_rate: float
    face_rate_ci: tuple[float, float]
    chance_top1: float
    chance_top5: float
    n_targets: int
    gallery: str
    ranks: tuple[int, ...]
    lineups: tuple[tuple[int, ...], ...]
    detected: tuple[bool, ...]
    model: str = JUDGE_DESCRIPTION

    def to_json(self) -> dict[str, object]:
        """The judge's rates (``independent`` in result.json); its per-target ranks, lineups
        and detections go under ``per_target``."""
        payload = asdict(self)
        for key in ("ranks", "lineups", "detected"):
            payload.pop(key)
        payload.update(identification_top1_ci=list(self.identification_top1_ci),
                       identification_top5_ci=list(self.identification_top5_ci), face_rate_ci=list(self.face_rate_ci))
        return payload

    @classmethod
    def from_json(cls, rates: dict[str, Any], per_target: dict[str, Any]) -> IndependentIdentification:
        return cls(**{**rates, "identification_top1_ci": tuple(rates["identification_top1_ci"]),
                      "identification_top5_ci": tuple(rates["identification_top5_ci"]),
                      "face_rate_ci": tuple(rates["face_rate_ci"]),
                      "ranks": tuple(per_target["independent_rank"]),
                      "lineups": tuple(tuple(row) for row in per_target["independent_lineup"]),
                      "detected": tuple(per_target["face_detected"])})


def judge_identification(probe: FaceEmbeddings, target_labels: np.ndarray, gallery: FaceEmbeddings,
                         gallery_labels: np.ndarray, n_classes: int, gallery_name: str) -> IndependentIdentification:
    """Top-1/top-5 of the judge's nearest-centroid identification, the face rate, intervals,
    and each target's rank of the true person and its lineup (the five nearest people)."""
    scores = centroid_scores(probe.descriptors, gallery.descriptors, gallery_labels, n_classes)
    top1, top5 = top_k_hits(scores, target_labels, 1), top_k_hits(scores, target_labels, 5)
    n = len(target_labels)
    lineups = np.argsort(-scores, axis=1, kind="stable")[:, :LINEUP_SIZE]
    return IndependentIdentification(
        identification_top1=float(top1.mean()), identification_top5=float(top5.mean()),
        identification_top1_ci=wilson_interval(int(top1.sum()), n),
        identification_top5_ci=wilson_interval(int(top5.sum()), n),
        face_rate=float(probe.detected.mean()), face_rate_ci=wilson_interval(int(probe.detected.sum()), n),
        chance_top1=chance(n_classes, 1), chance_top5=chance(n_classes, 5), n_targets=n, gallery=gallery_name,
        ranks=tuple(int(r) for r in rank_of_true(scores, target_labels)),
        lineups=tuple(tuple(int(c) for c in row) for row in lineups),
        detected=tuple(bool(d) for d in probe.detected),
    )


@dataclass(frozen=True)
class EvaluatorDisagreement:
    """Of the people the pixel evaluator counts as identified, the share the judge does not
    name: an estimate of the pixel evaluator's false-positive rate (0.0 when it names nobody)."""

    rate: float
    pixel_identified: int
    judge_rejected: int

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> EvaluatorDisagreement:
        return cls(**payload)


def evaluator_disagreement(pixel_ranks: np.ndarray, judge_ranks: np.ndarray) -> EvaluatorDisagreement:
    pixel_hit, judge_hit = np.asarray(pixel_ranks) == 1, np.asarray(judge_ranks) == 1
    rejected = int((pixel_hit & ~judge_hit).sum())
    identified = int(pixel_hit.sum())
    return EvaluatorDisagreement(rejected / identified if identified else 0.0, identified, rejected)


@dataclass(frozen=True)
class PixelEvaluator:
    """Which pixel-space evaluator scored the reconstructions, and how well it knows the people."""

    model: str
    role: str
    trained_on: str
    accuracy_on_training_photos: float

    def to_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class BaselineIdentification:
    """The label-permuted twin's headline numbers, scored like the target's, or why there
    is none (``available`` False: verdicts then compare with chance)."""

    available: bool
    reason: str | None = None
    kind: str | None = None
    pixel_top1: float | None = None
    reid_top1: float | None = None
    reid_top1_ci: tuple[float, float] | None = None
    judge_top1: float | None = None
    judge_top1_ci: tuple[float, float] | None = None
    judge_top5: float | None = None
    face_rate: float | None = None

    def to_json(self) -> dict[str, object]:
        if not self.available:
            return {"available": False, "reason": self.reason}
        return {"available": True, "kind": self.kind, "identification_top1": self.pixel_top1,
                "reid_top1": self.reid_top1, "reid_top1_ci": list(self.reid_top1_ci or ()),
                "independent": {"identification_top1": self.judge_top1,
                                "identification_top1_ci": list(self.judge_top1_ci or ()),
                                "identification_top5": self.judge_top5, "face_rate": self.face_rate}}

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> BaselineIdentification:
        if not payload["available"]:
            return cls(False, reason=payload["reason"])
        judge = payload["independent"]
        return cls(True, kind=payload["kind"], pixel_top1=payload["identification_top1"],
                   reid_top1=payload["reid_top1"], reid_top1_ci=tuple(payload["reid_top1_ci"]),
                   judge_top1=judge["identification_top1"], judge_top1_ci=tuple(judge["identification_top1_ci"]),
                   judge_top5=judge["identification_top5"], face_rate=judge["face_rate"])


@dataclass(frozen=True)
class ImageIdentification:
    """Every identification number for a batch of reconstructions (see the module
    docstring): the judge (``judge``), the pixel evaluator (``pixel_*``), re-identification
    from the photos an attacker could hold (``reid_*``), similarity to the closest training
    photo, chance levels, per-target ranks, and the label-permuted baseline once measured.
    ``to_json`` is the ``metrics`` object of a face attack's result.json."""

    pixel_top1: float
    pixel_top5: float
    reid_top1: float
    reid_top1_ci: tuple[float, float]
    reid_top5: float
    reid_ssim_top1: float
    reid_ssim_top5: float
    reid_gallery: str
    ssim_mean: float
    psnr_mean: float
    chance_top1: float
    chance_top5: float
    judge: IndependentIdentification
    disagreement: EvaluatorDisagreement
    reid_training_photos_top1: float
    labels: tuple[int, ...]
    evaluator_ranks: tuple[int, ...]
    reid_ranks: tuple[int, ...]
    ssim_closest: tuple[float, ...]
    evaluator: PixelEvaluator | None = None
    baseline: BaselineIdentification | None = None

    def to_json(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "identification_top1": self.pixel_top1, "identification_top5": self.pixel_top5,
            "reid_top1": self.reid_top1, "reid_top1_ci": list(self.reid_top1_ci), "reid_top5": self.reid_top5,
            "reid_ssim_top1": self.reid_ssim_top1, "reid_ssim_top5": self.reid_ssim_top5,
            "reid_gallery": self.reid_gallery, "ssim_mean": self.ssim_mean, "psnr_mean": self.psnr_mean,
            "chance_top1": self.chance_top1, "chance_top5": self.chance_top5,
            "independent": self.judge.to_json(), "evaluator_disagreement": self.disagreement.to_json(),
            "diagnostics": {"reid_training_photos_top1": self.reid_training_photos_top1, "note": TRAINING_PHOTOS_NOTE},
            "per_target": {
                "label": list(self.labels), "evaluator_rank": list(self.evaluator_ranks),
                "independent_rank": list(self.judge.ranks),
                "independent_lineup": [list(row) for row in self.judge.lineups],
                "face_detected": list(self.judge.detected), "reid_rank": list(self.reid_ranks),
                "ssim_closest": list(self.ssim_closest),
            },
        }
        if self.evaluator is not None:
            payload["evaluator"] = self.evaluator.to_json()
        if self.baseline is not None:
            payload["baseline"] = self.baseline.to_json()
        return payload

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> ImageIdentification:
        per_target = payload["per_target"]
        evaluator, baseline = payload.get("evaluator"), payload.get("baseline")
        return cls(
            pixel_top1=payload["identification_top1"], pixel_top5=payload["identification_top5"],
            reid_top1=payload["reid_top1"], reid_top1_ci=tuple(payload["reid_top1_ci"]), reid_top5=payload["reid_top5"],
            reid_ssim_top1=payload["reid_ssim_top1"], reid_ssim_top5=payload["reid_ssim_top5"],
            reid_gallery=payload["reid_gallery"], ssim_mean=payload["ssim_mean"], psnr_mean=payload["psnr_mean"],
            chance_top1=payload["chance_top1"], chance_top5=payload["chance_top5"],
            judge=IndependentIdentification.from_json(payload["independent"], per_target),
            disagreement=EvaluatorDisagreement.from_json(payload["evaluator_disagreement"]),
            reid_training_photos_top1=payload["diagnostics"]["reid_training_photos_top1"],
            labels=tuple(per_target["label"]), evaluator_ranks=tuple(per_target["evaluator_rank"]),
            reid_ranks=tuple(per_target["reid_rank"]), ssim_closest=tuple(per_target["ssim_closest"]),
            evaluator=None if evaluator is None else PixelEvaluator(**evaluator),
            baseline=None if baseline is None else BaselineIdentification.from_json(baseline),
        )

    def headline(self) -> dict[str, Any]:
        """The numbers a defence comparison reports of one attack: the judge's top-1 (with
        its interval) and face rate, re-identification from held-out photos, and the pixel
        evaluator's top-1."""
        return {"judge_top1": self.judge.identification_top1, "judge_top1_ci": list(self.judge.identification_top1_ci),
                "face_rate": self.judge.face_rate, "reid_top1": self.reid_top1, "identification_top1": self.pixel_top1}

    def baselines(self) -> tuple[float, float, str]:
        """The judge's and re-identification's baselines, and what they are: the twin's
        numbers, or chance when it is unavailable."""
        base = self.baseline
        if base is not None and base.available:
            return float(base.judge_top1), float(base.reid_top1), "label-permuted baseline"  # type: ignore[arg-type]
        why = "not measured" if base is None else base.reason
        return self.chance_top1, self.chance_top1, f"chance (baseline unavailable: {why})"


TRAINING_PHOTOS_NOTE = "re-identification against the model's own training photos: no attacker holds them"


def identification_metrics(
    reconstructions: np.ndarray,
    target_labels: np.ndarray,
    evaluator: FaceEvaluator,
    gallery: np.ndarray,
    gallery_labels: np.ndarray,
    in_training: np.ndarray,
    n_classes: int,
    judged: IndependentIdentification,
    attacker_photos: np.ndarray | None = None,
) -> ImageIdentification:
    """All identification numbers for a batch of reconstructions, with chance levels and
    per-target detail. ``gallery`` holds every real photo of every person; ``in_training``
    marks the ones the target was trained on: re-identification ranks people by their other
    photos an attacker could hold (``attacker_photos``, by default those not in training), and
    the closest-training-photo SSIM uses the training ones. ``judged`` is the independent
    judge's verdict on the same batch."""
    recon = torch.as_tensor(reconstructions, dtype=torch.float32)
    photos = torch.as_tensor(gallery)
    in_training = torch.as_tensor(in_training)
    evaluator_scores = evaluator.scores(reconstructions)
    similarity_all = correlation_matrix(recon, photos)
    held_out = ~in_training if attacker_photos is None else torch.as_tensor(attacker_photos)
    if not bool(held_out.any()):
        raise ValueError("re-identification needs at least one photo outside the model's training set")
    correlation = subject_scores(similarity_all[:, held_out], gallery_labels[held_out.numpy()], n_classes)
    training_correlation = subject_scores(similarity_all[:, in_training], gallery_labels[in_training.numpy()],
                                          n_classes)
    similarity = ssim_matrix(recon, photos)
    structural = subject_scores(similarity[:, held_out], gallery_labels[held_out.numpy()], n_classes)

    own = torch.as_tensor(gallery_labels)[None, :] == torch.as_tensor(target_labels)[:, None]
    eligible = own & in_training[None, :]
    closest = photos[similarity.masked_fill(~eligible, -torch.inf).argmax(1)]
    closest_ssim, closest_psnr = ssim(recon, closest), psnr(recon, closest)
    pixel_ranks = rank_of_true(evaluator_scores, target_labels)
    reid_hits = top_k_hits(correlation, target_labels, 1)
    n = len(target_labels)

    return ImageIdentification(
        pixel_top1=float(top_k_hits(evaluator_scores, target_labels, 1).mean()),
        pixel_top5=float(top_k_hits(evaluator_scores, target_labels, 5).mean()),
        reid_top1=float(reid_hits.mean()),
        reid_top1_ci=wilson_interval(int(reid_hits.sum()), n),
        reid_top5=float(top_k_hits(correlation, target_labels, 5).mean()),
        reid_ssim_top1=float(top_k_hits(structural, target_labels, 1).mean()),
        reid_ssim_top5=float(top_k_hits(structural, target_labels, 5).mean()),
        reid_gallery=judged.gallery,
        ssim_mean=float(closest_ssim.mean()),
        psnr_mean=float(closest_psnr.mean()),
        chance_top1=chance(n_classes, 1),
        chance_top5=chance(n_classes, 5),
        judge=judged,
        disagreement=evaluator_disagreement(pixel_ranks, np.array(judged.ranks)),
        reid_training_photos_top1=float(top_k_hits(training_correlation, target_labels, 1).mean()),
        labels=tuple(int(label) for label in target_labels),
        evaluator_ranks=tuple(int(rank) for rank in pixel_ranks),
        reid_ranks=tuple(int(rank) for rank in rank_of_true(correlation, target_labels)),
        ssim_closest=tuple(float(value) for value in closest_ssim),
    )
