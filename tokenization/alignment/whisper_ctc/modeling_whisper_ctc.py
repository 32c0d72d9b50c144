"""The Whisper CTC head: frame-wise character logits from a Whisper encoder layer's states, and CTC training.

`forward` takes the encoder's states, as `Wav2Vec2ForCTC` takes audio: states in, `logits` out, and the CTC loss
when `labels` (padded with -100) are given. The encoder itself stays outside the module: it is frozen, and the
same states for every epoch are computed once (`WhisperEncoderStates`), not per step. `frame_log_probs` runs the
whole way from a waveform, for the CTC aligner.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import CausalLMOutput

from .configuration_whisper_ctc import WhisperCtcConfig


class WhisperCtcHead(PreTrainedModel):
    config_class = WhisperCtcConfig
    base_model_prefix = "whisper_ctc"
    main_input_name = "encoder_states"

    def __init__(self, config: WhisperCtcConfig):
        super().__init__(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size)
        self._encoder = None
        self.post_init()

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(mean=0.0, std=self.config.initializer_range)
            module.bias.data.zero_()

    def forward(self, encoder_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> CausalLMOutput:
        """`encoder_states` (batch, frames, hidden); `attention_mask` (batch, frames) marks real frames; `labels`
        (batch, characters), -100 past each row's end. The loss is CTC's, averaged over target lengths, as
        `Wav2Vec2ForCTC`'s default."""
        logits = self.lm_head(encoder_states)
        loss = None
        if labels is not None:
            if attention_mask is None:
                attention_mask = torch.ones(encoder_states.shape[:2], dtype=torch.long, device=logits.device)
            targets = labels >= 0
            log_probs = nn.functional.log_softmax(logits, dim=-1, dtype=torch.float32).transpose(0, 1)
            loss = nn.functional.ctc_loss(log_probs, labels.masked_select(targets), attention_mask.sum(-1),
                                          targets.sum(-1), blank=self.config.pad_token_id, zero_infinity=True)
        return CausalLMOutput(loss=loss, logits=logits)

    def encoder(self):
        """The Whisper encoder states this head reads (loaded once), checked against the depth and width the head
        was trained on: another model's states would give confident nonsense, not an error."""
        if self._encoder is None:
            from ...speech.whisper_encoder import WhisperEncoderStates

            encoder = WhisperEncoderStates(self.config.whisper_model, self.config.encoder_layer)
            if (encoder.num_layers, encoder.width) != (self.config.encoder_layers, self.config.hidden_size):
                raise ValueError(
                    f"This CTC head reads layer {self.config.encoder_layer} of a {self.config.encoder_layers}-layer, "
                    f"{self.config.hidden_size}-wide Whisper encoder; {self.config.whisper_model!r} is "
                    f"{encoder.num_layers} layers of {encoder.width}: give the head the model it was trained on.")
            self._encoder = encoder
        return self._encoder

    def frame_log_probs(self, waveform, sampling_rate: int) -> np.ndarray:
        """(frames, vocabulary) log-probabilities of one utterance, 50 frames per second."""
        states = self.encoder().batch_states([waveform], sampling_rate)[0]
        with torch.no_grad():
            logits = self(torch.from_numpy(states)[None].to(self.device, self.dtype)).logits[0]
        return torch.log_softmax(logits.float(), dim=-1).cpu().numpy()
