"""Fine-tuning: the loop, SLUE / ASR / TTS tasks, LoRA presets and adapters."""
