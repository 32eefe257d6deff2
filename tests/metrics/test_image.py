import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from mirisk.metrics.image import correlation_matrix, psnr, ssim, ssim_matrix


def reference_ssim(a: np.ndarray, b: np.ndarray) -> float:
    return structural_similarity(
        a[0], b[0], data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )


def test_ssim_matrix_matches_scikit_image(faces):
    a, b = faces.images[:3], faces.images[100:106]
    expected = np.array([[reference_ssim(x, y) for y in b] for x in a])
    np.testing.assert_allclose(ssim_matrix(torch.as_tensor(a), torch.as_tensor(b), chunk=4).numpy(), expected, atol=1e-4)


def test_pairwise_ssim_and_psnr_match_scikit_image(faces):
    a, b = faces.images[:4], faces.images[200:204]
    np.testing.assert_allclose(
        ssim(torch.as_tensor(a), torch.as_tensor(b)).numpy(), [reference_ssim(x, y) for x, y in zip(a, b)], atol=1e-4
    )
    np.testing.assert_allclose(
        psnr(torch.as_tensor(a), torch.as_tensor(b)).numpy(),
        [peak_signal_noise_ratio(x, y, data_range=1.0) for x, y in zip(a, b)],
        rtol=1e-4,
    )


def test_identical_images_score_perfectly(faces):
    a = torch.as_tensor(faces.images[:2])
    torch.testing.assert_close(ssim(a, a), torch.ones(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(correlation_matrix(a, a).diagonal(), torch.ones(2), atol=1e-5, rtol=0)


def test_correlation_ignores_brightness_and_contrast(faces):
    a = torch.as_tensor(faces.images[:3])
    torch.testing.assert_close(correlation_matrix(0.2 + 0.5 * a, a), correlation_matrix(a, a), atol=1e-5, rtol=0)


def test_masked_ssim_averages_the_local_map_inside_the_mask():
    import torch

    from mirisk.metrics.image import masked_ssim, ssim, ssim_map

    generator = torch.Generator().manual_seed(0)
    a = torch.rand(2, 1, 40, 40, generator=generator)
    b = a.clone()
    b[:, :, :, 20:] = torch.rand(2, 1, 40, 20, generator=generator)  # right half differs
    assert ssim_map(a, b).shape == (2, 30, 30)
    assert torch.allclose(ssim(a, b), ssim_map(a, b).mean(dim=(-2, -1)))
    left = torch.zeros(2, 40, 40, dtype=torch.bool)
    left[:, :, :12] = True  # windows centred here never reach the changed half
    assert torch.allclose(masked_ssim(a, b, left), torch.ones(2))
    assert (masked_ssim(a, b, ~left) < ssim(a, b)).all()
