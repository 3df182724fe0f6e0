"""Trained MRA-SNN (PyTorch) -> the integer network of network.py. Needs the training extra.

- Weights: int8, symmetric, one scale per output channel; batch norm folded into the conv's
  requantization (scale and bias per channel), so no float survives into the device.
- Calibration, on training-region windows only: the input scale 2**-s_in is the finest that
  clips at most 1e-4 of standardized training samples to int8.
- Both views (frontend=raw+envelope): envelope.py's integer spectrum; its bins' scales, the
  spectrum's shift and the batch norms on either side of the 1x1 mix fold into the mix's int8
  weights and requantization. The spectrum's shift is set on the calibration windows.
- A shrinking network (ssnn): each time mix becomes int8 with the finest power-of-two scale
  that holds its largest entry (at most 2**-8, the membrane's Q8, so the residual is a shift);
  each early classifier is quantized like the last one.
"""

from __future__ import annotations

import numpy as np
import torch

from edgesnn.errors import EdgesnnError
from edgesnn.firmware_sim.arith import LUT_Q, Q, Requant
from edgesnn.firmware_sim.envelope import centered, quantize_spectrum
from edgesnn.firmware_sim.network import (Attention, Block, Conv, EnvelopeView, Head, IntMRASNN, Neurons, TimeMix,
                                          to_int16)

CLIP_SHARE = 1e-4


def _int8_rows(w: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per output channel (first axis): (int8 weights, scale per channel)."""
    w = w.detach().double().numpy()
    scale = np.abs(w.reshape(w.shape[0], -1)).max(axis=1) / 127
    scale = np.where(scale == 0, 1.0, scale)
    q = np.clip(np.round(w / scale.reshape(-1, *[1] * (w.ndim - 1))), -127, 127).astype(np.int8)
    return q, scale


def _bn(bn: torch.nn.BatchNorm1d) -> tuple[np.ndarray, np.ndarray]:
    a = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().double().numpy()
    return a, bn.bias.detach().double().numpy() - bn.running_mean.detach().double().numpy() * a


def _conv(conv: torch.nn.Conv1d, bn_a: np.ndarray, bn_b: np.ndarray, in_scale: float) -> Conv:
    """Conv + folded BN; `in_scale`: the real value of one input unit."""
    w, s = _int8_rows(conv.weight)
    return Conv(w, conv.stride[0], conv.padding[0],
                Requant.from_real((1 << Q) * bn_a * s * in_scale, (1 << Q) * bn_b))


def _attention(att) -> Attention:
    fc1, fc2 = att.fc[0], att.fc[2]
    w1, s1 = _int8_rows(fc1.weight)
    w2, s2 = _int8_rows(fc2.weight)
    # mean (Q8) -> hidden (Q8): h = s1 * acc / 2**Q + b1, times 2**Q
    rq1 = Requant.from_real(s1, (1 << Q) * fc1.bias.detach().double().numpy())
    # hidden (Q8) -> table index (Q4)
    rq2 = Requant.from_real(s2 * (1 << LUT_Q) / (1 << Q), (1 << LUT_Q) * fc2.bias.detach().double().numpy())
    return Attention(w1, rq1, w2, rq2)


def _neurons(layer) -> Neurons:
    if layer.params.beta != 0.5 or layer.params.v_th != 1.0 or layer.params.reset != "soft":
        raise EdgesnnError("the integer network implements beta 0.5, threshold 1 and soft reset only")
    gate = None
    if layer.dendritic:
        w = layer.gate_w.detach().double().numpy()
        gate = Requant.from_real(w * (1 << LUT_Q) / (1 << Q), (1 << LUT_Q) * layer.gate_b.detach().double().numpy())
    return Neurons(2**layer.bits - 1, gate)


def calibrate_input_scale(train_windows: np.ndarray) -> int:
    """The largest s_in (finest step) with at most CLIP_SHARE of standardized samples clipped."""
    x = train_windows - train_windows.mean(axis=1, keepdims=True)
    z = np.abs(x / np.sqrt((x * x).mean(axis=1, keepdims=True) + 1e-12))
    for s_in in range(7, 1, -1):
        if np.mean(z * 2**s_in > 127.5) <= CLIP_SHARE:
            return s_in
    return 2


def _mix(transform) -> TimeMix | None:
    if isinstance(transform, torch.nn.Identity):
        return None
    w = transform.mix.detach().double().numpy()
    peak = max(float(np.abs(w).max()), 2.0**-Q)
    shift = min(Q, int(np.floor(np.log2(127 / peak))))
    return TimeMix(np.clip(np.round(w * 2.0**shift), -127, 127).astype(np.int8), shift)


def _head(fc: torch.nn.Linear, in_scale: float) -> Head:
    """A linear layer to Q8 outputs; `in_scale`: the real value of one input unit (a classifier
    on spike counts summed over T x L timesteps and positions: 1 / (T L), their firing rate)."""
    w, s = _int8_rows(fc.weight)
    return Head(w, Requant.from_real((1 << Q) * s * in_scale, (1 << Q) * fc.bias.detach().double().numpy()))


def quantize_mra_snn(model, classes, train_windows: np.ndarray) -> IntMRASNN:
    """`model`: an eval-mode MRA-SNN, or ssnn's shrinking one (bare or as deployed, with its
    early exit); `train_windows` [N, L] float, training region only."""
    from edgesnn.models.mra_snn import MRASNN
    from edgesnn.models.ssnn import EarlyExitSSNN, ShrinkingMRASNN

    if isinstance(model, EarlyExitSSNN):
        model = model.model
    # exactly these classes: another subclass computes something else
    if type(model) not in (MRASNN, ShrinkingMRASNN):
        raise EdgesnnError(f"the integer network covers the plain MRA-SNN that the mra_snn, inflor, realspike, "
                           f"trt, tssd and ltl packs deploy and ssnn's shrinking one, not {type(model).__name__}")
    if getattr(model, "frontend", "raw") not in ("raw", "raw+envelope"):
        raise EdgesnnError(f"the integer network implements the learned raw-signal encoder and both views "
                           f"(raw+envelope), not the {model.frontend} front end; export this model without --quantize")
    if not len(model.blocks):  # the firmware's schedule runs the classifier on the last block's counts
        raise EdgesnnError("the integer network needs at least one spike residual attention block (blocks >= 1); "
                           "export this model without --quantize")
    for block in model.blocks:
        if not isinstance(block.shortcut, torch.nn.Identity):
            raise EdgesnnError("the integer network needs identity shortcuts (equal channels in every block)")
    s_in = calibrate_input_scale(train_windows)
    bn_a, bn_b = _bn(model.encoder.bn)
    encoder, start = [], 0
    for branch in model.encoder.branches:
        c = slice(start, start + branch.out_channels)
        encoder.append(_conv(branch, bn_a[c], bn_b[c], 2.0**-s_in))
        start += branch.out_channels
    shrinking = isinstance(model, ShrinkingMRASNN)
    mixes = [_mix(t) for t in model.transforms] if shrinking else [None] * len(model.blocks)
    # a block's input is spike counts, or time-mixed counts in units of 2**-shift
    blocks = [Block(_conv(b.conv, *_bn(b.bn), 2.0 ** -(m.shift if m else 0)), _attention(b.attention),
                    _neurons(b.neurons)) for b, m in zip(model.blocks, mixes)]
    length = model.window // model.encoder.branches[0].stride[0]  # after block k: length >> (k + 1)
    steps = list(getattr(model, "stage_timesteps", [model.timesteps] * len(blocks)))
    fc = _head(model.classifier, 1 / (steps[-1] * (length >> len(blocks))))
    stages = {}
    if shrinking:
        stages = {"stage_timesteps": steps, "mixes": mixes,
                  "exits": [_head(e, 1 / (steps[k] * (length >> (k + 1)))) for k, e in enumerate(model.exits)],
                  "exit_threshold": model.exit_threshold}
    envelope = None
    if model.envelope_view is not None:
        envelope = _envelope_view(model.envelope_view, train_windows, length >> len(blocks))
    return IntMRASNN(list(classes), model.window, model.timesteps, s_in, encoder, _attention(model.encoder.attention),
                     _neurons(model.encode_neurons), blocks, fc.w, fc.rq, envelope=envelope, **stages)


def _envelope_view(view, train_windows: np.ndarray, raw_length: int) -> EnvelopeView:
    """models.mra_snn.EnvelopeView -> its integer form. `raw_length`: the raw view's length at the
    classifier, which the envelope view's counts are shifted up to."""
    enc = view.encoder
    spectrum, unit = quantize_spectrum(enc.front, centered(to_int16(train_windows)))
    # mix(feature_norm(unit * q)) then bn: weights W a_k unit_k on q, bias a2 (W b) + b2
    a1, b1 = _bn(enc.feature_norm)
    a2, b2 = _bn(enc.bn)
    w = enc.mix.weight.detach().double().numpy()[:, :, 0]  # [C, bins]
    w8, s = _int8_rows(torch.from_numpy(w * (a1 * unit)[None, :])[:, :, None])
    mix = Conv(w8, 1, 0, Requant.from_real((1 << Q) * a2 * s, (1 << Q) * (a2 * (w @ b1) + b2)))
    blocks = [Block(_conv(b.conv, *_bn(b.bn), 1.0), _attention(b.attention), _neurons(b.neurons)) for b in view.blocks]
    length = spectrum.bands >> len(blocks)
    shift = int(np.log2(raw_length // length)) if raw_length >= length else -1
    if shift < 0 or length << shift != raw_length:
        raise EdgesnnError(f"the integer network joins views whose lengths differ by a power of two, the raw "
                           f"view's the longer, not {raw_length} and {length}")
    return EnvelopeView(spectrum, mix, _attention(enc.attention), _neurons(view.neurons), blocks, shift)


def quantize_esvae(model, train_windows: np.ndarray):
    """The esvae pack's detector (eval mode) -> firmware_sim.esvae.IntESVAE. The spectrum's
    kernels are int8 with one scale per bin (its cosine and sine share it, so their powers add);
    the per-bin scale, the frame count, the natural log and the batch norm fold into the target's
    requantization."""
    from edgesnn.firmware_sim.esvae import IntESVAE

    for layer in (model.enc_neurons, model.latent_neurons, model.dec_neurons):
        _neurons(layer)  # refuses neuron parameters the integer network does not implement
    s_in = calibrate_input_scale(train_windows)
    k = model.spectrum.kernels[:, 0].double().numpy()  # [2 * bins, frame]
    bins = model.spectrum.bins
    scale = np.maximum(np.abs(k[:bins]).max(axis=1), np.abs(k[bins:]).max(axis=1)) / 127  # per bin
    scale = np.where(scale == 0, 1.0, scale)  # the sine kernels of DC and Nyquist are zero
    both = np.concatenate([scale, scale])[:, None]
    stft_w = np.clip(np.round(k / both), -127, 127).astype(np.int8)
    frames = (model.window - k.shape[1]) // model.spectrum.hop + 1
    # ln(mean power) = ln2 * log2(power sum) + ln((scale * 2**-s_in)**2 / frames); then (. - mean) / std
    bn = model.normalize
    sd = np.sqrt(bn.running_var.double().numpy() + bn.eps)
    offset = np.log((scale * 2.0**-s_in) ** 2 / frames) - bn.running_mean.double().numpy()
    target_rq = Requant.from_real(np.log(2) / sd, (1 << Q) * offset / sd)
    t, levels = model.timesteps, model.levels
    return IntESVAE(model.window, t, levels, s_in, stft_w, model.spectrum.hop, target_rq,
                    enc_in=_head(model.enc_in, 2.0**-Q), enc_latent=_head(model.enc_latent, 1.0),
                    dec_in=_head(model.dec_in, 1 / (t * levels)), dec_out=_head(model.dec_out, 1 / t))
