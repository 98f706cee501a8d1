"""The compress notebook's llm-compressor cells (`compress` test flag) run in the compress environment.

They quantize the embedded SmolLM2-135M with 4-bit GPTQ on this CPU, load the folder back in transformers, and check
size and accuracy before and after. The core environment's `nbdev-test` skips those cells; this test runs them once
per `make test` (and so once per CI run)."""
import os, subprocess, time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NBDEV_TEST = ROOT / '.venv-compress' / 'bin' / 'nbdev-test'


@pytest.mark.skipif(not NBDEV_TEST.exists(), reason="no .venv-compress: build it with `make env-compress` "
                    "(llm-compressor needs its own environment)")
def test_compress_notebook_in_compress_env(check_ok):
    t0 = time.perf_counter()
    r = subprocess.run([str(NBDEV_TEST), 'nbs/04_compress.ipynb', '--flags', 'compress', '--timing'], cwd=ROOT,
                       capture_output=True, text=True, timeout=3600,
                       env={**os.environ, 'TOKENIZERS_PARALLELISM': 'false', 'HF_HUB_OFFLINE': '1'})
    check_ok(r)
    print(f"compress notebook (flag `compress`, compress environment): {time.perf_counter() - t0:.0f} s")
