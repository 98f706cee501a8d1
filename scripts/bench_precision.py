#!/usr/bin/env python
"""Precision per phase on this CPU: fp32, bf16, `auto` (the probe's choice per phase) and a planted split, side by side in one run.

The transformers engine on the embedded model with a trained LoRA adapter (merged, as the main job evaluates it):

- held-out exact match on the main job's task (arithmetic, the test part of its question space), greedy, in batches
  of 32 (the main job's evaluation) and of 4 (a small batch, which an AVX2-only CPU decodes in bf16), with each
  configuration's paired 95% CI against fp32 on the same items;
- one prompt at a time: time to first token and decode tokens/s (median of `--repeats` after a warm-up).

Configurations: `fp32` and `bf16` everywhere; `auto` (what the probe chose here: printed); and `split` (prompt read in
fp32, every decode batch size in bf16: what an AVX2-only CPU gets for small batches), planted so the hand-over is
measured on any CPU. The CPU model, its speed-deciding flags, the thread count and the probe's timings are printed
with the table: compare ratios within one run only. To run this CPU restricted to AVX2's instructions (bf16 then
has no native matrix instructions), set ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2.

    .venv/bin/python scripts/bench_precision.py [--adapter DIR] [--n 300] [--repeats 3] [--out bench_precision.json]
"""
import argparse, json, os, statistics, sys, time
from pathlib import Path

import torch

from slm_nb.core import env_info
from slm_nb.engines import HFEngine
from slm_nb.evaluation import evaluate
from slm_nb.precision import precision_probe
from slm_nb.scoring import bootstrap_ci
from slm_nb.tasks import make_task

STORY = [{'role': 'user', 'content': 'Write a long, detailed story about a lighthouse keeper who finds a message in a bottle.'}]


def latest_adapter() -> Path | None:
    "The adapter of the newest lora_sft run under ./runs, if any."
    runs = sorted(Path('runs').glob('*-lora_sft/adapter'))
    return runs[-1] if runs else None


def engine(config: str, adapter) -> HFEngine:
    if config != 'split': return HFEngine('smollm2-135m-instruct', adapter=adapter, precision=config, merge=adapter is not None)
    e = HFEngine('smollm2-135m-instruct', adapter=adapter, precision='fp32', merge=adapter is not None)
    e._add_copy(torch.bfloat16, merge=adapter is not None, trust_remote_code=False)
    e.decode_dtypes = {r: torch.bfloat16 for r in e.decode_dtypes}
    from slm_nb.precision import pack_linear_weights
    e.n_packed = pack_linear_weights(e.models[torch.bfloat16])
    return e


def single(e: HFEngine, tokens: int, repeats: int) -> dict:
    gen = dict(max_new_tokens=tokens, batch_size=1)
    e.generate([STORY], gen)  # warm-up
    runs = [e.generate([STORY], gen)[0] for _ in range(repeats)]
    tps = [(g.generated_tokens - 1) / (g.latency_s - g.ttft_s) for g in runs if g.generated_tokens > 1]
    return dict(ttft_ms=1000 * statistics.median(g.ttft_s for g in runs), decode_tokens_per_s=statistics.median(tps) if tps else None)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--adapter', default=None, help="LoRA adapter folder (default: the newest runs/*-lora_sft/adapter; 'none': the base model)")
    ap.add_argument('--n', type=int, default=300, help='held-out items')
    ap.add_argument('--tokens', type=int, default=64, help='new tokens of the one-prompt timing')
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--configs', default='fp32,bf16,auto,split')
    ap.add_argument('--out', default=None)
    a = ap.parse_args()
    adapter = None if a.adapter == 'none' else (Path(a.adapter) if a.adapter else latest_adapter())
    info, probe = env_info(), precision_probe()
    isa = {k: os.environ[k] for k in ('ONEDNN_MAX_CPU_ISA', 'ATEN_CPU_CAPABILITY', 'MKL_ENABLE_INSTRUCTIONS') if os.environ.get(k)}
    print(f"CPU: {info.get('cpu_model')}  flags: {info.get('cpu_speed_flags')}  torch {torch.__version__}  threads: {torch.get_num_threads()}"
          f"  instruction-set limits: {isa or 'none'}")
    print(f"probe ({probe['probe_s']} s): fp32 {probe['ms']['fp32']} ms; bf16 {probe['ms']['bf16']} ms")
    print(f"probe's choice: train {probe['train']}, prefill {probe['prefill']}, decode by rows {probe['decode']}")
    print(f"model: smollm2-135m-instruct + {adapter or 'no adapter'} (merged); {a.n} held-out arithmetic items")
    ds = make_task('arithmetic', a.n, seed=0, split='test')
    rows = {}
    for config in a.configs.split(','):
        e = engine(config, adapter)
        r = dict(precision=e.precision)
        for bs in (32, 4):
            t0 = time.perf_counter()
            ev = evaluate(e, ds, dict(max_new_tokens=32, batch_size=bs))
            r[f'batch{bs}'] = dict(exact_match=ev['accuracy'], wall_s=time.perf_counter() - t0, tokens_per_s=ev['speed']['tokens_per_s'],
                                   correct=[x['correct'] for x in ev['items']])
        r['single'] = single(e, a.tokens, a.repeats)
        e.close(); del e
        rows[config] = r
        print(f"  {config} done: {r['precision']}", flush=True)
    ref = rows.get('fp32')
    print(f"\n{'config':7s} {'precision (prefill / decode by rows)':38s} {'batch':>5s} {'EM':>6s} {'vs fp32 [95% CI]':>24s} {'wall s':>7s} {'tok/s':>7s} {'x fp32':>6s}")
    for config, r in rows.items():
        p = r['precision']; desc = f"{p['prefill']} / " + ' '.join(f"{k}:{v}" for k, v in p['decode'].items())
        for bs in (32, 4):
            b = r[f'batch{bs}']; d = ''
            if ref and config != 'fp32':
                ci = bootstrap_ci([float(x) for x in b['correct']], paired_with=[float(x) for x in ref[f'batch{bs}']['correct']], seed=0)
                b['vs_fp32'] = ci; d = f"{ci['estimate']:+.3f} [{ci['low']:+.3f}, {ci['high']:+.3f}]"
            speed = ref[f'batch{bs}']['wall_s'] / b['wall_s'] if ref else float('nan')
            print(f"{config:7s} {desc:38s} {bs:5d} {b['exact_match']:6.3f} {d:>24s} {b['wall_s']:7.1f} {b['tokens_per_s']:7.1f} {speed:6.2f}")
    print(f"\none prompt, {a.tokens} new tokens, median of {a.repeats}:")
    print(f"{'config':7s} {'TTFT ms':>8s} {'decode tok/s':>12s} {'TTFT x fp32':>11s} {'decode x fp32':>13s}")
    for config, r in rows.items():
        s = r['single']; f = ref['single'] if ref else None
        print(f"{config:7s} {s['ttft_ms']:8.0f} {s['decode_tokens_per_s']:12.1f} {(f['ttft_ms'] / s['ttft_ms']) if f else float('nan'):11.2f} "
              f"{(s['decode_tokens_per_s'] / f['decode_tokens_per_s']) if f else float('nan'):13.2f}")
    if a.out:
        for r in rows.values():
            for bs in (32, 4): r[f'batch{bs}'].pop('correct')
        Path(a.out).write_text(json.dumps(dict(env={k: info.get(k) for k in ('cpu_model', 'cpu_speed_flags', 'torch')}, isa_limits=isa,
                                               threads=torch.get_num_threads(), probe=probe, adapter=str(adapter), n=a.n, rows=rows), indent=1, default=str))


if __name__ == '__main__':
    sys.exit(main())
