"""speechquant core: open SpeechBrain ASR models, plan and apply quantization, measure it."""
