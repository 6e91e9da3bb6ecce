"""`hf:` — transformers models, with their helpers: GGUF cache, weights fingerprint, oneDNN linear, test models."""
