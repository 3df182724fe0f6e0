"""MRA-SNN: Multi-scale Residual Attention spiking network (arXiv 2408.11067), for raw vibration.

  raw window [N, 1, L] -> standardize
  -> multi-scale attention encoder: parallel wide convolutions at several kernel sizes (short
     kernels see the ringing of one impact, long ones the spacing of impacts), concatenated,
     channel attention, then multi-bit spiking neurons over T timesteps: spatio-temporal spikes
  -> spike residual attention blocks: conv -> BN -> channel attention -> + shortcut (on the
     membrane input, so spikes stay integers) -> multi-bit neurons with dendritic filtering
     -> max pool (integers stay integers)
  -> firing rate over time and length -> linear classifier.

Every convolution sees only integer spike counts (0..2**bits-1) except the encoder, which sees
the standardized signal: what a microcontroller accumulates is exact.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from edgesnn.framing import framed_kernel
from edgesnn.layers import ChannelAttention, CWTFrontEnd, EnvelopeSpectrum, SpikingNeurons, Standardize
from edgesnn.neurons import LIFParams
from edgesnn.registry import real_number, whole_number

# Chosen by measurement (see README "MRA-SNN design"): three scales cover one impact's ringing
# (16 samples = 1.3 ms at 12 kHz) up to several impacts (256 samples = 21 ms, two BPFO periods).
SCALES = (16, 64, 256)
STRIDE = 16
CHANNELS = 48
BLOCKS = 3
MAX_CHANNELS = 1024


class MultiScaleEncoder(nn.Module):
    def __init__(self, channels: int, scales=SCALES, stride: int = STRIDE):
        super().__init__()
        per_branch = channels // len(scales)
        widths = [per_branch] * (len(scales) - 1) + [channels - per_branch * (len(scales) - 1)]
        self.branches = nn.ModuleList(
            nn.Conv1d(1, w, k, stride=stride, padding=(k - stride) // 2, bias=False) for k, w in zip(scales, widths)
        )
        self.bn = nn.BatchNorm1d(channels)
        self.attention = ChannelAttention(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(self.bn(torch.cat([b(x) for b in self.branches], dim=1)))


class FramedMultiScaleEncoder(nn.Module):
    """A trained MultiScaleEncoder in the form that is exported: its convolutions over stride-long
    frames of the window (edgesnn/framing.py), the same sums, faster in onnxruntime."""

    def __init__(self, encoder: MultiScaleEncoder, window: int):
        super().__init__()
        self.stride = encoder.branches[0].stride[0]
        self.n_frames = window // self.stride
        self.pads = []
        for k, branch in enumerate(encoder.branches):
            w, lead, right = framed_kernel(branch.weight.detach().cpu().numpy(), self.stride, branch.padding[0], window)
            self.register_buffer(f"w{k}", torch.from_numpy(w))
            self.pads.append((lead, right))
        self.bn, self.attention = encoder.bn, encoder.attention

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.reshape(-1, self.n_frames, self.stride).transpose(1, 2)  # [N, stride, n_frames]
        currents = [F.conv1d(frames, getattr(self, f"w{k}"), padding=lead) if lead == right
                    else F.conv1d(F.pad(frames, (lead, right)), getattr(self, f"w{k}"))
                    for k, (lead, right) in enumerate(self.pads)]
        return self.attention(self.bn(torch.cat(currents, dim=1)))


class FixedFrontEndEncoder(nn.Module):
    """The alternatives to the learned wide convolutions: a fixed front end, not trained (a
    wavelet bank, edgesnn.layers.CWTFrontEnd, or envelope spectra, EnvelopeSpectrum), giving
    [N, features, L'], then a learned 1x1 mix of its features into channels."""

    def __init__(self, front: nn.Module, features: int, channels: int):
        super().__init__()
        self.front = front
        self.feature_norm = nn.BatchNorm1d(features)
        self.mix = nn.Conv1d(features, channels, 1, bias=False)
        self.bn = nn.BatchNorm1d(channels)
        self.attention = ChannelAttention(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(self.bn(self.mix(self.feature_norm(self.front(x)))))


def direct_encoding(current: torch.Tensor, timesteps: int) -> torch.Tensor:
    """The same encoded current [N, C, L] drives the neurons at every timestep: [T*N, C, L].
    (Shapes written without x.shape keep shape arithmetic out of the exported graph.)"""
    return current.repeat(timesteps, 1, 1) if timesteps > 1 else current


def _encoder(frontend: str, channels: int, scales: tuple[int, ...], window: int, short: bool = False) -> nn.Module:
    if frontend == "raw":
        return MultiScaleEncoder(channels, scales)
    if frontend == "cwt":  # band energies over time: the length the blocks run along is time
        front = CWTFrontEnd(STRIDE)
        return FixedFrontEndEncoder(front, front.n_scales, channels)
    # envelope spectra, frequency bins as features: the blocks run along the resonance bands
    front = EnvelopeSpectrum(window, short=short)
    return FixedFrontEndEncoder(front, front.bins, channels)


class SpikeResidualAttentionBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, bits: int, timesteps: int, dendritic: bool,
                 params: LIFParams = LIFParams()):
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm1d(c_out)
        self.attention = ChannelAttention(c_out)
        self.shortcut = (nn.Identity() if c_in == c_out
                         else nn.Sequential(nn.Conv1d(c_in, c_out, 1, bias=False), nn.BatchNorm1d(c_out)))
        self.neurons = SpikingNeurons(c_out, bits, timesteps, dendritic, params)
        self.pool = nn.MaxPool1d(2)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        current = self.attention(self.bn(self.conv(s))) + self.shortcut(s)
        return self.pool(self.neurons(current))


FRONTENDS = ("raw", "cwt", "envelope", "raw+envelope")
ENVELOPE_BANKS = ("morlet", "short")  # the envelope view's bands (None: morlet)
MAX_ENVELOPE_BLOCKS = 4  # its length, the 16 bands, halves at each block
# frontend=raw+envelope, in training only: a quarter of the windows reach the classifier through
# the raw view alone and a quarter through the envelope view alone, so that neither view can lean
# on the other and each must diagnose by itself
VIEW_DROPOUT = 0.25


class EnvelopeView(nn.Module):
    """The second view of frontend=raw+envelope: envelope spectra of the standardized window
    through their own spiking neurons and spike residual attention blocks -> spikes [T*N, C, L'].
    `short`: the bands are 32-tap Hann-windowed complex kernels at stride 16 (a short-time Fourier
    transform's, edgesnn.layers.short_bank) instead of complex Morlet wavelets: a twelfth of the
    multiplications, for the same envelope spectrum peaks."""

    def __init__(self, window: int, channels: int, blocks: int, bits: int, timesteps: int, dendritic: bool,
                 params: LIFParams, short: bool = False):
        super().__init__()
        self.timesteps = timesteps
        self.encoder = _encoder("envelope", channels, SCALES, window, short=short)
        self.neurons = SpikingNeurons(channels, bits, timesteps, dendritic, params)
        self.blocks = nn.Sequential(*[
            SpikeResidualAttentionBlock(channels, channels, bits, timesteps, dendritic, params) for _ in range(blocks)
        ])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.neurons(direct_encoding(self.encoder(z), self.timesteps)))


def takes_both_views(cls: type) -> bool:
    """Whether a network class built on MRASNN runs frontend=raw+envelope: only where it keeps
    MRASNN's forward and training (a pack with its own time loop or loss runs one view)."""
    return cls.forward is MRASNN.forward and not hasattr(cls, "training_loss")


class MRASNN(nn.Module):
    """The network every MRA-SNN-based pack deploys. `frontend`: "raw" (learned multi-scale
    convolutions, the default), "cwt" (fixed wavelet bank), "envelope" (envelope spectra of
    resonance bands) or "raw+envelope" (both views, each through its own spiking blocks, their
    firing rates side by side into one classifier); `rectifier`: the membrane
    potential rectifier's steepness (0: none; it shapes training only). With both views,
    `envelope_bank` ("morlet" or "short", EnvelopeView) and `envelope_blocks` (default: as many
    as the raw view's) shape the envelope view."""

    def __init__(self, n_classes: int = 10, window: int = 2048, timesteps: int = 1, bits: int = 2,
                 channels: int = CHANNELS, blocks: int = BLOCKS, dendritic: bool = True,
                 scales: tuple[int, ...] = SCALES, frontend: str = "raw", rectifier: float = 0.0,
                 envelope_blocks: int | None = None, envelope_bank: str | None = None):
        super().__init__()
        # the constructor's arguments: a pack that trains with extra parts rebuilds the plain
        # network from them to ship (see deployable())
        self.config = dict(n_classes=n_classes, window=window, timesteps=timesteps, bits=bits, channels=channels,
                           blocks=blocks, dendritic=dendritic, scales=tuple(scales), frontend=frontend,
                           rectifier=rectifier, envelope_blocks=envelope_blocks, envelope_bank=envelope_bank)
        if frontend not in FRONTENDS:
            raise ValueError(f"frontend must be one of {', '.join(FRONTENDS)}, not {frontend!r}")
        views = frontend.split("+")
        if len(views) > 1 and not takes_both_views(type(self)):
            raise ValueError(f"frontend={frontend} is for the plain MRA-SNN (packs mra_snn, inflor); "
                             f"{type(self).__name__} trains and runs one view")
        # beyond these a window's activations alone take gigabytes, and the length (window / stride)
        # halves at each block
        whole_number("channels", channels, 1, MAX_CHANNELS)
        whole_number("blocks", blocks, 0, max((window // STRIDE).bit_length() - 1, 0))
        if not isinstance(dendritic, bool):
            raise ValueError(f"dendritic must be true or false, not {dendritic!r}")
        real_number("rectifier", rectifier, 0.0)
        if (envelope_bank is not None or envelope_blocks is not None) and len(views) == 1:
            raise ValueError("envelope_bank and envelope_blocks shape the second view of frontend=raw+envelope")
        if envelope_bank not in (None, *ENVELOPE_BANKS):
            raise ValueError(f"envelope_bank must be one of {', '.join(ENVELOPE_BANKS)}, not {envelope_bank!r}")
        if envelope_blocks is not None:
            whole_number("envelope_blocks", envelope_blocks, 0, MAX_ENVELOPE_BLOCKS)
        elif len(views) > 1 and blocks > MAX_ENVELOPE_BLOCKS:
            raise ValueError(f"the envelope view takes at most {MAX_ENVELOPE_BLOCKS} blocks and has as many as the raw "
                             f"view unless envelope_blocks says otherwise: with blocks={blocks}, set envelope_blocks "
                             f"(0 to {MAX_ENVELOPE_BLOCKS})")
        self.timesteps, self.spike_bits, self.window = timesteps, bits, window
        self.frontend = frontend
        params = LIFParams(rectifier=float(rectifier))
        self.standardize = Standardize()
        self.encoder = _encoder(views[0], channels, tuple(scales), window)
        self.encode_neurons = SpikingNeurons(channels, bits, timesteps, dendritic, params)
        self.blocks = nn.Sequential(*[
            SpikeResidualAttentionBlock(channels, channels, bits, timesteps, dendritic, params) for _ in range(blocks)
        ])
        self.envelope_view = (EnvelopeView(window, channels, blocks if envelope_blocks is None else envelope_blocks,
                                           bits, timesteps, dendritic, params, short=envelope_bank == "short")
                              if len(views) > 1 else None)
        self.classifier = nn.Linear(channels * len(views), n_classes)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Raw windows [N, 1, L] -> encoder spikes [T*N, C, L'] (time folded into the batch)."""
        return self.encode_neurons(direct_encoding(self.encoder(self.standardize(x)), self.timesteps))

    def rate(self, s: torch.Tensor) -> torch.Tensor:
        """Spikes [T*N, C, L] -> firing rate per channel [N, C], over time and length."""
        return s.mean(dim=2) if self.timesteps == 1 else torch.stack(s.chunk(self.timesteps)).mean(dim=(0, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rates = self.rate(self.blocks(self.encode(x)))
        if self.envelope_view is not None:  # (the exported graph standardizes once for both views)
            rates = self.join_views(rates, self.rate(self.envelope_view(self.standardize(x))))
        return self.classifier(rates)

    def join_views(self, raw: torch.Tensor, envelope: torch.Tensor) -> torch.Tensor:
        """Both views' firing rates [N, 2C]; in training, each window's VIEW_DROPOUT chance to
        keep only the raw view's, and as much to keep only the envelope view's."""
        if self.training:
            u = torch.rand(raw.shape[0], 1, device=raw.device)
            raw, envelope = raw * (u >= VIEW_DROPOUT), envelope * ((u < VIEW_DROPOUT) | (u >= 2 * VIEW_DROPOUT))
        return torch.cat([raw, envelope], dim=1)

    def export_form(self) -> "MRASNN":
        """A copy to export to ONNX, with the raw-signal encoder in its frame form."""
        if not isinstance(self.encoder, MultiScaleEncoder):
            return self
        form = copy.deepcopy(self)
        form.encoder = FramedMultiScaleEncoder(form.encoder, self.window)
        return form


def deployable(model: MRASNN, state: dict | None = None) -> MRASNN:
    """The plain MRA-SNN inside a pack's training network: same configuration, the weights it
    shares (training-only heads and teachers left behind), or `state` when given."""
    plain = MRASNN(**model.config).to(next(model.parameters()).dtype)
    own = plain.state_dict()
    plain.load_state_dict({k: v for k, v in (state or model.state_dict()).items() if k in own})
    return plain.eval()


def build(n_classes: int = 10, window: int = 2048, timesteps: int = 1, bits: int = 2, **kwargs) -> MRASNN:
    return MRASNN(n_classes=n_classes, window=window, timesteps=timesteps, bits=bits, **kwargs)
