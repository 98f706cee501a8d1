"""The compress notebook's llm-compressor cells (`compress` test flag) run in the compress environment.

They quantize the embedded SmolLM2-135M with 4-bit GPTQ on this CPU, load the folder back in transformers, and check
size and accuracy before and after. The core environment's `nbdev-test` skips those cells; this test runs them once
per `make test` (and so once per CI run)."""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NBDEV_TEST = ROOT / '.venv-compress' / 'bin' / 'nbdev-test'


@pytest.mark.skipif(not NBDEV_TEST.exists(), reason="no .venv-compress: build it with `make env-compress` "
                    "(llm-compressor needs its own environment)")
def test_compress_notebook_in_compress_env(run_flagged_cells):
    run_flagged_cells(NBDEV_TEST, 'nbs/06_compress.ipynb', 'compress', timeout=3600)
