"""The published spoken benchmarks, read from their released audio in each release's own layout: sWUGGY and sBLIMP
(ZeroSpeech 2021), sStoryCloze and tStoryCloze (TWIST), SALMon; each scored with its own rule (see its module)."""
