#!/usr/bin/env bash
# `transformers serve` (an OpenAI-compatible server) for the openai: predictor's tests: they
# serve SmolLM2 on 127.0.0.1. Kept out of the `api` extra so API users need no torch.
set -euo pipefail
cd "$(dirname "$0")/../.."
.venv/bin/python -m pip install -q "transformers[serving]"
