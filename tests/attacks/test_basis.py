import pytest
import torch

from mirisk.attacks.basis import LatentBasis, dct_basis, public_face_basis
from mirisk.errors import MiriskError
from mirisk.priors.store import load_prior


def test_dct_basis_is_orthogonal_and_public_basis_has_the_image_shape(faces):
    basis = dct_basis((1, 112, 92), size=(4, 3))
    gram = basis.components @ basis.components.T
    torch.testing.assert_close(gram, 100.0 * torch.eye(12), atol=1e-3, rtol=0)
    public = public_face_basis(faces.images[faces.labels >= 30])
    assert public.decode(torch.zeros(1, len(public.components)), (1, 112, 92), (0.0, 1.0)).shape == (1, 1, 112, 92)


def test_the_latent_space_of_the_shipped_prior_decodes_to_images_in_the_value_range():
    latent = LatentBasis(load_prior())
    codes = torch.randn(300, latent.dimensions, generator=torch.Generator().manual_seed(0)) * 5
    images = latent.decode(codes, (1, 112, 92), (-1.0, 1.0))  # more than one decoding batch, codes past the clip
    assert images.shape == (300, 1, 112, 92) and images.min() >= -1.0 and images.max() <= 1.0
    clipped = latent.decode(codes.clamp(-latent.clip, latent.clip), (1, 112, 92), (-1.0, 1.0))
    torch.testing.assert_close(images, clipped)
    assert "20 public people" in latent.name
    with pytest.raises(MiriskError, match="the prior makes"):
        latent.decode(codes[:1], (1, 64, 64), (0.0, 1.0))
