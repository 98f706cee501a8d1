#!/usr/bin/env python
"""How close the inference workloads run to this machine's own limits, measured in one run.

Each workload runs twice: once under `torch.utils.flop_counter.FlopCounterMode` (the matrix products' FLOPs,
counted by torch, not estimated) and once under torch's profiler (the time of each kind of operator). Its time
splits into three parts:

- the matrix products (`mm`, `addmm`, `bmm` and oneDNN's pre-packed linear): their GFLOP/s, against this machine's fp32
  matmul peak at training shapes (`slm_nb.utilization.matmul_peak`, probed in the same run);
- attention (`scaled_dot_product_attention`): its GB/s of keys and values read, against the read bandwidth of a
  1 GiB buffer (a decode step reads the whole cache once); for scoring, which is compute-bound, its share of the time
  (torch's FLOP counter does not count the CPU's attention kernel);
- the rest (norms, activations, the residual adds, sampling); and the wall time outside operators (Python).

For decode steps the products' weights read per second are printed too: one row's step is bound by reading them.

Workloads, through the engine's own code (`HFEngine`, `shared_context_logliks`, `reference_nll`):

- `decode 1 x 60`: one decode step of one prompt with 60 cached tokens (engine_bench's one-at-a-time arm);
- `decode 32 x 100`: one step of 32 rows, 100 cached tokens (engine_bench's batched arm);
- `decode 39 x 500`: one step of 39 rows, 500 cached tokens (Experiment 2's batch, halfway through its 384 new tokens);
- `HellaSwag 32 items`: the forgetting check's scorer (each context once, the endings batched);
- `reference NLL 8 proofs`: Experiment 2's reference likelihood on 8 DEMI benchmark problems.

Decode steps run in the precision `auto` picks for their row count (`HFEngine.decode_dtype`); scoring runs in the
prefill precision. The CPU model, its speed-deciding flags and the thread count are printed: compare within one run.

    .venv/bin/python scripts/bench_floors.py [--steps 10] [--out bench_floors.json]
"""
import argparse, json, time, warnings
from pathlib import Path
warnings.filterwarnings('ignore')

import torch
from torch.profiler import profile
from torch.utils.flop_counter import FlopCounterMode

from slm_nb.core import cpu_model, cpu_speed_flags, env_info
from slm_nb.data import load_records
from slm_nb.engines import HFEngine, growing_cache
from slm_nb.evaluation import reference_nll
from slm_nb.general import read_hellaswag, sample_items, shared_context_logliks
from slm_nb.utilization import matmul_peak, training_shapes
from bench_prefill import DEMI_SYSTEM  # math_judge's default `system`, as the prefill benchmark uses it

PRODUCTS = ('aten::mm', 'aten::addmm', 'aten::bmm', 'mkldnn::_linear_pointwise', 'aten::mkldnn_linear', 'torch_ipex::ipex_linear')


def read_bandwidth(gib:float=1.0) -> float:
    "Bytes/s of reading a `gib` GiB fp32 buffer (its sum), best of 5."
    buf = torch.ones(int(gib * 2**30) // 4)
    buf.sum(); best = float('inf')
    for _ in range(5):
        t = time.perf_counter(); buf.sum(); best = min(best, time.perf_counter() - t)
    return buf.numel() * 4 / best


def split(fn, steps:int=1) -> dict:
    "Seconds per call of `fn` (wall), in products, attention and the rest (profiler: operators' own time), and its counted FLOPs per call."
    with FlopCounterMode(display=False) as fc: fn()
    flops = {str(k): v for k, v in fc.get_flop_counts()['Global'].items()}
    fn()  # warm-up
    t = time.perf_counter()
    for _ in range(steps): fn()
    wall = (time.perf_counter() - t) / steps  # without the profiler, whose own cost is not the workload's
    with profile() as prof:
        for _ in range(steps): fn()
    ev = {e.key: e.self_cpu_time_total / 1e6 / steps for e in prof.key_averages()}
    prod = sum(v for k, v in ev.items() if k in PRODUCTS)
    attn = sum(v for k, v in ev.items() if 'scaled_dot_product' in k)
    total = sum(ev.values())
    return dict(wall_s=wall, profiled_s=total, products_s=prod, attention_s=attn, rest_s=total - prod - attn,
                product_flops=sum(v for k, v in flops.items() if k.split('.')[-1] in ('mm', 'addmm', 'bmm')))


def decode_step(eng, rows:int, kv:int):
    "A callable running one greedy decode step of `rows` rows after `kv` cached tokens, in `auto`'s precision for `rows`; and the cache's bytes."
    m = eng.models.get(eng.decode_dtype(rows), eng.model)
    ids = torch.randint(100, 1000, (rows, kv))
    with torch.inference_mode():
        cache = m(input_ids=ids, past_key_values=growing_cache(m), use_cache=True, logits_to_keep=1).past_key_values
    nxt = torch.full((rows, 1), 200)
    def step():
        with torch.inference_mode():
            for l in cache.layers:  # back to `kv` tokens, in the same room: every call alike
                l.keys, l.values = l.keys[..., :kv, :], l.values[..., :kv, :]
                l._shown = l.keys
            m(input_ids=nxt, past_key_values=cache, use_cache=True).logits[:, -1].argmax(-1)
    kv_bytes = sum(l.keys.numel() * l.keys.element_size() * 2 for l in cache.layers)
    return step, kv_bytes, str(next(m.parameters()).dtype).replace('torch.', '')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--steps', type=int, default=10); ap.add_argument('--out', default='bench_floors.json')
    a = ap.parse_args()
    eng = HFEngine('smollm2-135m-instruct', precision='auto')
    cfg = eng.model.config.to_dict()
    peak = matmul_peak(training_shapes(cfg, 2048), 'fp32')['gflops']
    bw = read_bandwidth()
    print(f"CPU: {cpu_model()} ({', '.join(cpu_speed_flags())}), {torch.get_num_threads()} torch threads; "
          f"fp32 matmul peak {peak:.0f} GFLOP/s, read bandwidth {bw / 1e9:.1f} GB/s", flush=True)
    res = dict(env=env_info(), matmul_peak_gflops=peak, read_bandwidth_gb_s=bw / 1e9, precision=eng.precision, workloads={})
    work = {}
    for rows, kv in ((1, 60), (32, 100), (39, 500)):
        step, kv_bytes, dt = decode_step(eng, rows, kv)
        work[f"decode {rows} x {kv} ({dt})"] = (step, a.steps, (kv_bytes, eng.decode_weight_bytes(rows)))
    items = sample_items(read_hellaswag(), 32, 0)
    tok = eng.tokenizer
    reqs = [((it['query'], ' ' + c), tok(it['query'])['input_ids'], tok(' ' + c)['input_ids']) for it in items for c in it['choices']]
    work["HellaSwag 32 items"] = (lambda: torch.inference_mode()(shared_context_logliks)(eng.model, reqs, 16), 1, None)
    proofs = load_records('demi:benchmark', system=DEMI_SYSTEM).select(range(8))
    work['reference NLL 8 proofs'] = (lambda: reference_nll(eng, proofs, max_length=4096, n_boot=10), 1, None)
    for name, (fn, steps, nbytes) in work.items():
        kv_bytes, w_bytes = nbytes or (None, None)
        s = split(fn, steps)
        s['products_gflops'] = s['product_flops'] / s['products_s'] / 1e9
        s['products_share_of_peak'] = s['products_gflops'] / peak
        if kv_bytes:
            s['attention_gb_s'], s['attention_share_of_bandwidth'] = kv_bytes / s['attention_s'] / 1e9, kv_bytes / s['attention_s'] / bw
            s['weights_gb_s'], s['weights_share_of_bandwidth'] = w_bytes / s['products_s'] / 1e9, w_bytes / s['products_s'] / bw
        res['workloads'][name] = s
        att = (f"{s['attention_gb_s']:.1f} GB/s of keys and values = {100 * s['attention_share_of_bandwidth']:.0f}% of the read bandwidth"
               if kv_bytes else f"{100 * s['attention_s'] / s['profiled_s']:.0f}% of the time")
        wts = f", weights read at {s['weights_gb_s']:.1f} GB/s = {100 * s['weights_share_of_bandwidth']:.0f}% of the bandwidth" if kv_bytes else ''
        print(f"{name}: {1000 * s['wall_s']:.1f} ms per call; operators: products {1000 * s['products_s']:.1f} ms at {s['products_gflops']:.0f} GFLOP/s "
              f"({100 * s['products_share_of_peak']:.0f}% of the peak{wts}), attention {1000 * s['attention_s']:.1f} ms ({att}), "
              f"the rest {1000 * s['rest_s']:.1f} ms; outside operators (Python) {1000 * max(0, s['wall_s'] - s['profiled_s']):.1f} ms", flush=True)
    eng.close()
    Path(a.out).write_text(json.dumps(res, indent=1))


if __name__ == '__main__':
    main()
