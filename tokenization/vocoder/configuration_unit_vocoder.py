"""Configuration of the unit HiFi-GAN vocoder (speech units -> waveform).

The generator and duration predictor are transformers' own SeamlessM4T unit HiFi-GAN modules, which read
their shape from config attributes of these names; speaker and language embeddings are off (width 0): our
units come from one voice. The upsampling rates multiply to the samples per unit frame (320 at 16 kHz for
50 Hz units, 640 for 25 Hz), so one unit frame gives exactly `hop_length` samples.
"""

from __future__ import annotations

import math

from transformers import PretrainedConfig

# Upsampling (rates, transposed-conv kernels) per hop; every kernel minus its rate is even, so each layer
# multiplies the length exactly by its rate.
UPSAMPLING = {
    320: ([5, 4, 4, 2, 2], [11, 8, 8, 4, 4]),
    640: ([5, 4, 4, 4, 2], [11, 8, 8, 8, 4]),
}
PRESETS = {
    # for tests: trains in seconds, says nothing
    "tiny": dict(unit_embed_dim=16, upsample_initial_channel=32, resblock_kernel_sizes=[3],
                 resblock_dilation_sizes=[[1, 3]]),
    # a few minutes of CPU training on the built-in corpus
    "small": dict(unit_embed_dim=128, upsample_initial_channel=256,
                  resblock_kernel_sizes=[3, 7], resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5]]),
    # HiFi-GAN V1's widths (speech-resynthesis' unit vocoders)
    "v1": dict(unit_embed_dim=128, upsample_initial_channel=512,
               resblock_kernel_sizes=[3, 7, 11], resblock_dilation_sizes=[[1, 3, 5]] * 3),
}


class UnitVocoderConfig(PretrainedConfig):
    """Unit vocabulary, frame rate and generator shape of a `UnitHifiGanVocoder`.

    `deduplicated`: the vocoder is fed deduplicated units (SUTLM's mode) and predicts each unit's duration in
    frames; otherwise every unit is one frame (LST's raw units) and no duration is predicted.
    """

    model_type = "lst_unit_vocoder"

    def __init__(
        self,
        num_units: int = 100,
        sampling_rate: int = 16000,
        frame_rate: int = 50,
        deduplicated: bool = False,
        unit_embed_dim: int = 128,
        upsample_initial_channel: int = 256,
        upsample_rates: list[int] | None = None,
        upsample_kernel_sizes: list[int] | None = None,
        resblock_kernel_sizes: list[int] = (3, 7),
        resblock_dilation_sizes: list[list[int]] = ((1, 3, 5), (1, 3, 5)),
        leaky_relu_slope: float = 0.1,
        variance_predictor_kernel_size: int = 3,
        var_pred_dropout: float = 0.5,
        max_duration: int = 50,
        **kwargs,
    ):
        for name, value in (("num_units", num_units), ("sampling_rate", sampling_rate), ("frame_rate", frame_rate)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive whole number, got {value!r}.")
        if sampling_rate % frame_rate:
            raise ValueError(f"sampling_rate {sampling_rate} is not a whole number of samples per {frame_rate} Hz "
                             "unit frame; pick rates whose ratio is an integer (16000 / 50 = 320).")
        hop = sampling_rate // frame_rate
        if upsample_rates is None:
            if hop not in UPSAMPLING:
                raise ValueError(f"No default upsampling for {hop} samples per frame ({sorted(UPSAMPLING)} have one); "
                                 "pass upsample_rates and upsample_kernel_sizes.")
            upsample_rates, upsample_kernel_sizes = UPSAMPLING[hop]
        upsample_rates, upsample_kernel_sizes = list(upsample_rates), list(upsample_kernel_sizes or [])
        if math.prod(upsample_rates) != hop:
            raise ValueError(f"upsample_rates {upsample_rates} multiply to {math.prod(upsample_rates)}, not the "
                             f"{hop} samples per unit frame of {sampling_rate} Hz audio at {frame_rate} Hz units.")
        if len(upsample_kernel_sizes) != len(upsample_rates) or any(
                (k - r) % 2 or k < r for k, r in zip(upsample_kernel_sizes, upsample_rates)):
            raise ValueError(f"upsample_kernel_sizes {upsample_kernel_sizes} must give one kernel per rate, each at "
                             f"least its rate with an even difference (rates {upsample_rates}).")
        if variance_predictor_kernel_size != 3:
            raise ValueError("variance_predictor_kernel_size must be 3: the library's duration predictor pads its "
                             "second convolution by 1.")
        self.num_units = num_units
        self.sampling_rate = sampling_rate
        self.frame_rate = frame_rate
        self.deduplicated = deduplicated
        self.unit_embed_dim = unit_embed_dim
        self.upsample_initial_channel = upsample_initial_channel
        self.upsample_rates = upsample_rates
        self.upsample_kernel_sizes = upsample_kernel_sizes
        self.resblock_kernel_sizes = list(resblock_kernel_sizes)
        self.resblock_dilation_sizes = [list(d) for d in resblock_dilation_sizes]
        self.leaky_relu_slope = leaky_relu_slope
        self.variance_predictor_kernel_size = variance_predictor_kernel_size
        self.var_pred_dropout = var_pred_dropout
        self.max_duration = max_duration
        # the library's generator reads these widths; one voice, one language
        self.lang_embed_dim = 0
        self.spkr_embed_dim = 0
        super().__init__(**kwargs)

    @property
    def hop_length(self) -> int:
        """Waveform samples per unit frame."""
        return self.sampling_rate // self.frame_rate

    @classmethod
    def from_preset(cls, name: str, **kwargs) -> UnitVocoderConfig:
        if name not in PRESETS:
            raise ValueError(f"Unknown vocoder preset {name!r}; choose one of {sorted(PRESETS)}.")
        return cls(**{**PRESETS[name], **kwargs})
