import torch

from mirisk.attacks.basis import dct_basis, public_face_basis


def test_dct_basis_is_orthogonal_and_public_basis_has_the_image_shape(faces):
    basis = dct_basis((1, 112, 92), size=(4, 3))
    gram = basis.components @ basis.components.T
    torch.testing.assert_close(gram, 100.0 * torch.eye(12), atol=1e-3, rtol=0)
    public = public_face_basis(faces.images[faces.labels >= 30])
    assert public.decode(torch.zeros(1, len(public.components)), (1, 112, 92), (0.0, 1.0)).shape == (1, 1, 112, 92)
