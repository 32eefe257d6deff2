from mirisk.metrics.reidentification import RoundReconstruction, ScanReidentification


def test_a_decoder_attacks_metrics_read_back_typed_with_their_excess_over_chance():
    metrics = {"reid_top1": 0.5, "reid_top1_ci": [0.3, 0.7], "reid_top5": 0.9, "ssim_mean": 0.6,
               "ssim_brain_mean": 0.4, "reid_correlation_top1": 0.45, "chance_top1": 0.1, "chance_top5": 0.5}
    leak = ScanReidentification.from_json(metrics)
    assert leak.reid_top1_ci == (0.3, 0.7) and leak.excess == 0.4
    assert leak.headline() == {"reid_top1": 0.5, "reid_top5": 0.9, "ssim_mean": 0.6, "ssim_brain_mean": 0.4,
                               "chance_top1": 0.1}


def test_a_gradient_attacks_metrics_read_back_typed_with_or_without_the_judge():
    metrics = {"reid_top1": 0.75, "reid_top1_ci": [0.4, 0.9], "ssim_mean": 0.8, "psnr_mean": 21.0,
               "label_accuracy": 1.0, "chance_top1": 0.25, "independent": None}
    unjudged = RoundReconstruction.from_json(metrics)
    assert unjudged.judge_top1 is None and unjudged.excess == 0.5
    judged = RoundReconstruction.from_json({**metrics, "independent": {"identification_top1": 0.5, "face_rate": 1.0}})
    assert (judged.judge_top1, judged.judge_face_rate) == (0.5, 1.0)
    assert judged.headline() == {"reid_top1": 0.75, "ssim_mean": 0.8, "psnr_mean": 21.0, "label_accuracy": 1.0,
                                 "chance_top1": 0.25}
