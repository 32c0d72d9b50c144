"""The unit HiFi-GAN vocoder: speech units (optionally deduplicated, with durations) -> 16 kHz waveform.

The generator (`SeamlessM4THifiGan`) and the duration predictor (`SeamlessM4TVariancePredictor`) are
transformers' own unit HiFi-GAN modules. We do not use `SeamlessM4TCodeHifiGan` whole: its forward always
expands units by its *predicted* durations and needs speaker and language ids, while training needs the
reference durations (teacher forcing) and our units have one voice. The unit embedding, the expansion and
the checks are ours; discriminators and losses live in `losses.py` (the library ships inference only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.models.seamless_m4t.modeling_seamless_m4t import SeamlessM4THifiGan, SeamlessM4TVariancePredictor
from transformers.utils import ModelOutput

from .configuration_unit_vocoder import UnitVocoderConfig


@dataclass
class UnitVocoderOutput(ModelOutput):
    """`waveform` `(batch, samples)`, zero past each row's `waveform_lengths`; `durations` in unit frames per
    input unit (the given or predicted ones); `log_duration_prediction` `(batch, units)` when the vocoder
    predicts durations (deduplicated units), the duration loss's input."""

    waveform: torch.FloatTensor | None = None
    waveform_lengths: torch.LongTensor | None = None
    durations: torch.LongTensor | None = None
    log_duration_prediction: torch.FloatTensor | None = None


def _apply_weight_norm(generator: SeamlessM4THifiGan) -> None:
    """HiFi-GAN trains its generator's convolutions under weight normalisation (as the library's code HiFi-GAN's
    `apply_weight_norm`, for our generator, which is not wrapped in a `SeamlessM4TCodeHifiGan`)."""
    weight_norm = nn.utils.parametrizations.weight_norm
    weight_norm(generator.conv_pre)
    for layer in generator.upsampler:
        weight_norm(layer)
    for block in generator.resblocks:
        block.apply_weight_norm()
    weight_norm(generator.conv_post)


class UnitHifiGanVocoder(PreTrainedModel):
    config_class = UnitVocoderConfig
    base_model_prefix = "vocoder"
    main_input_name = "units"
    _no_split_modules = []

    def __init__(self, config: UnitVocoderConfig):
        super().__init__(config)
        self.unit_embedding = nn.Embedding(config.num_units, config.unit_embed_dim)
        self.duration_predictor = SeamlessM4TVariancePredictor(config) if config.deduplicated else None
        self.generator = SeamlessM4THifiGan(config)
        self.post_init()
        _apply_weight_norm(self.generator)

    def _init_weights(self, module):
        # torch's default convolution init: HiFi-GAN's N(0, 0.01) leaves this narrower generator's output near
        # 1e-8, below the mel loss's floor, where it gets no gradient
        if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
            module.reset_parameters()
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, 0.0, 1.0)
        elif isinstance(module, (nn.Linear, nn.LayerNorm)):
            super()._init_weights(module)

    def _checked_units(self, units: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        if units.dim() != 2 or units.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"units must be integer ids of shape (batch, units), got {tuple(units.shape)} "
                             f"{units.dtype}.")
        if units.shape[1] == 0:
            raise ValueError("units is empty: there is nothing to vocode (an empty speech continuation?).")
        mask = torch.ones_like(units, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
        real = units[mask]
        if real.numel() and (int(real.min()) < 0 or int(real.max()) >= self.config.num_units):
            raise ValueError(f"units {sorted(set(real[(real < 0) | (real >= self.config.num_units)].tolist()))[:10]} "
                             f"are outside this vocoder's {self.config.num_units} units (0..{self.config.num_units - 1})"
                             "; vocode units from the extractor it was trained on (joint token ids must be turned "
                             "back into unit ids first: tokenizer.decode_segments).")
        if not mask.any(dim=1).all():
            raise ValueError("A row of units has no real unit (all padding); drop empty continuations first.")
        return mask

    def forward(self, units: torch.LongTensor, durations: torch.LongTensor | None = None,
                attention_mask: torch.Tensor | None = None, return_dict: bool | None = None) -> UnitVocoderOutput:
        """Each unit is repeated for its duration in frames (given; predicted for deduplicated units; else 1),
        and every frame becomes `config.hop_length` samples."""
        mask = self._checked_units(units, attention_mask)
        embeddings = self.unit_embedding(units.clamp(0, self.config.num_units - 1))  # (batch, units, dim)
        log_duration = None
        if self.duration_predictor is not None:
            log_duration = self.duration_predictor(embeddings)
        if durations is None:
            if log_duration is None:
                durations = torch.ones_like(units)
            else:
                durations = torch.round(torch.expm1(log_duration.detach())).long().clamp(1, self.config.max_duration)
        elif durations.shape != units.shape or (durations[mask] < 1).any():
            raise ValueError(f"durations must give each unit at least one frame, shaped like units {tuple(units.shape)}"
                             f", got {tuple(durations.shape)}.")
        durations = durations.long() * mask
        frame_counts = durations.sum(dim=1)
        # repeat every unit for its frames, then pad the rows to the longest (one gather, no python loop per unit)
        unit_index = torch.repeat_interleave(torch.arange(units.numel(), device=units.device), durations.reshape(-1))
        frames = embeddings.reshape(-1, embeddings.shape[-1])[unit_index]
        frames = nn.utils.rnn.pad_sequence(frames.split(frame_counts.tolist()), batch_first=True)
        waveform = self.generator(frames.transpose(1, 2))
        waveform_lengths = frame_counts * self.config.hop_length
        sample_is_real = torch.arange(waveform.shape[1], device=waveform.device) < waveform_lengths[:, None]
        waveform = waveform * sample_is_real
        output = UnitVocoderOutput(waveform, waveform_lengths, durations, log_duration)
        return output if return_dict is not False else output.to_tuple()

    @torch.no_grad()
    def synthesize(self, units, durations=None) -> np.ndarray:
        """One utterance's waveform (float32 at `config.sampling_rate`) from a unit array."""
        units = torch.as_tensor(np.asarray(units), dtype=torch.long, device=self.device)[None]
        if durations is not None:
            durations = torch.as_tensor(np.asarray(durations), dtype=torch.long, device=self.device)[None]
        output = self(units, durations)
        return output.waveform[0, : int(output.waveform_lengths[0])].float().cpu().numpy()
