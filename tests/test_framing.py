"""The frame form of a strided one-channel convolution (edgesnn/framing.py) computes the same
outputs as the convolution, for the encoder's geometries and awkward ones."""

import numpy as np
import pytest

from edgesnn.framing import framed_kernel

torch = pytest.importorskip("torch")
F = torch.nn.functional


@pytest.mark.parametrize("k, stride, pad, length", [
    (16, 16, 0, 2048), (64, 16, 24, 2048), (256, 16, 120, 2048),  # MRA-SNN's encoder
    (64, 16, 0, 2048), (40, 8, 5, 512), (7, 4, 3, 64), (5, 4, 0, 64),
])
def test_frame_form_equals_the_strided_convolution(k, stride, pad, length):
    rng = np.random.default_rng(k + pad)
    w, x = rng.standard_normal((5, 1, k)), rng.standard_normal((3, 1, length))
    plain = F.conv1d(torch.tensor(x), torch.tensor(w), stride=stride, padding=pad).numpy()
    wf, lead, right = framed_kernel(w, stride, pad, length)
    frames = torch.tensor(x).reshape(3, length // stride, stride).transpose(1, 2)
    framed = F.conv1d(F.pad(frames, (lead, right)), torch.tensor(wf)).numpy()
    assert framed.shape == plain.shape
    np.testing.assert_allclose(framed, plain, rtol=0, atol=1e-12)


def test_frame_form_needs_one_channel_and_whole_frames():
    with pytest.raises(ValueError, match="one input channel"):
        framed_kernel(np.zeros((4, 2, 16)), 16, 0, 2048)
    with pytest.raises(ValueError, match="multiple of the stride"):
        framed_kernel(np.zeros((4, 1, 16)), 16, 0, 2050)
