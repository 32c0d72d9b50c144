"""What trains the unit vocoder: HiFi-GAN's discriminators and losses.

transformers ships the unit HiFi-GAN for inference only and speechbrain (which has training parts) needs
torchaudio, which breaks `import evaluate` beside the CPU torch here; so the multi-period and multi-scale
discriminators and the losses are ours, after the HiFi-GAN paper (Kong et al. 2020): least-squares GAN
losses, feature matching (x2) and an L1 log-mel loss (x45). `width` scales every discriminator channel
count (HiFi-GAN's are width 32 for the period and 16 for the scale discriminators, too slow on a CPU).
The mel filters come from transformers' `audio_utils`; the STFT is torch's, so the loss is differentiable.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from transformers.audio_utils import mel_filter_bank

_SLOPE = 0.1
weight_norm = nn.utils.parametrizations.weight_norm


class PeriodDiscriminator(nn.Module):
    """Looks at every `period`-th sample: the waveform folded into (samples / period, period) 2-d."""

    def __init__(self, period: int, width: int):
        super().__init__()
        self.period = period
        channels = [1, width, 4 * width, 16 * width, 32 * width]
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(c_in, c_out, (5, 1), (3, 1), padding=(2, 0)))
            for c_in, c_out in zip(channels[:-1], channels[1:])
        )
        self.convs.append(weight_norm(nn.Conv2d(channels[-1], channels[-1], (5, 1), 1, padding=(2, 0))))
        self.post = weight_norm(nn.Conv2d(channels[-1], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        batch, samples = waveform.shape
        if samples % self.period:
            waveform = F.pad(waveform, (0, self.period - samples % self.period), mode="reflect")
        return _convolve(self.convs, self.post, waveform.view(batch, 1, -1, self.period))


def _convolve(convs, post, hidden) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """A discriminator's stack: leaky-ReLU convolutions, then the output convolution; every layer's output is
    kept for the feature-matching loss."""
    features = []
    for conv in convs:
        hidden = F.leaky_relu(conv(hidden), _SLOPE)
        features.append(hidden)
    hidden = post(hidden)
    features.append(hidden)
    return hidden.flatten(1), features


class ScaleDiscriminator(nn.Module):
    """Strided grouped 1-d convolutions over the waveform (or an average-pooled copy of it)."""

    def __init__(self, width: int):
        super().__init__()
        w = width
        layers = [(1, w, 15, 1, 1), (w, w, 41, 4, 4), (w, 2 * w, 41, 4, 16), (2 * w, 4 * w, 41, 4, 16),
                  (4 * w, 8 * w, 41, 4, 16), (8 * w, 8 * w, 41, 1, 16), (8 * w, 8 * w, 5, 1, 1)]
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv1d(c_in, c_out, k, s, groups=min(g, c_in), padding=(k - 1) // 2))
            for c_in, c_out, k, s, g in layers
        )
        self.post = weight_norm(nn.Conv1d(8 * w, 1, 3, 1, padding=1))

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return _convolve(self.convs, self.post, waveform[:, None])


class HifiGanDiscriminator(nn.Module):
    """Multi-period (periods 2, 3, 5, 7, 11) and multi-scale (x1, x2, x4) discriminators together."""

    def __init__(self, width: int = 8, periods=(2, 3, 5, 7, 11), scales: int = 3):
        super().__init__()
        self.period_discriminators = nn.ModuleList(PeriodDiscriminator(p, width) for p in periods)
        self.scale_discriminators = nn.ModuleList(ScaleDiscriminator(2 * width) for _ in range(scales))

    def forward(self, waveform: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        outputs = [d(waveform) for d in self.period_discriminators]
        for index, discriminator in enumerate(self.scale_discriminators):
            if index:
                waveform = F.avg_pool1d(waveform[:, None], 4, 2, padding=2)[:, 0]
            outputs.append(discriminator(waveform))
        return outputs


class LogMelSpectrogram(nn.Module):
    """Log-mel magnitudes `(batch, mels, frames)`: the mel loss's view of a waveform."""

    def __init__(self, sampling_rate: int, n_fft: int = 1024, hop_length: int = 160, num_mels: int = 80):
        super().__init__()
        self.n_fft, self.hop_length = n_fft, hop_length
        filters = mel_filter_bank(num_frequency_bins=n_fft // 2 + 1, num_mel_filters=num_mels, min_frequency=0.0,
                                  max_frequency=sampling_rate / 2, sampling_rate=sampling_rate, norm="slaney",
                                  mel_scale="slaney")
        self.register_buffer("filters", torch.from_numpy(filters.T).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        spectrum = torch.stft(waveform, self.n_fft, self.hop_length, window=self.window, center=True,
                              return_complex=True)
        magnitude = torch.sqrt(spectrum.real ** 2 + spectrum.imag ** 2 + 1e-9)
        return torch.log(self.filters @ magnitude + 1e-5)  # an offset, not a clamp: silence still has a gradient


def discriminator_loss(real_outputs, fake_outputs) -> torch.Tensor:
    """Least squares: real towards 1, generated towards 0, summed over the discriminators."""
    return sum(torch.mean((1 - real) ** 2) + torch.mean(fake ** 2)
               for (real, _), (fake, _) in zip(real_outputs, fake_outputs))


def adversarial_loss(fake_outputs) -> torch.Tensor:
    return sum(torch.mean((1 - fake) ** 2) for fake, _ in fake_outputs)


def feature_matching_loss(real_outputs, fake_outputs) -> torch.Tensor:
    return 2 * sum(torch.mean(torch.abs(real.detach() - fake))
                   for (_, real_features), (_, fake_features) in zip(real_outputs, fake_outputs)
                   for real, fake in zip(real_features, fake_features))


def duration_loss(log_duration_prediction: torch.Tensor, durations: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MSE between the predicted log(1 + duration) and the reference's, over real units (fairseq's target)."""
    target = torch.log1p(durations.float())
    return F.mse_loss(log_duration_prediction[mask], target[mask])
