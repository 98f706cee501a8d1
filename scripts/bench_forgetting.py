#!/usr/bin/env python
"""The forgetting check's scorer on this CPU: lm-eval HFLM's own loop against each context run once, side by side in one run.

The embedded model on `--n` HellaSwag items (the seeded sample the main job uses), at each `--precision`, through
`slm_nb.general.lm_eval_hellaswag` (lm-eval's task, requests and metrics) with `share_contexts=False` (HFLM runs
every (context, ending) pair whole and takes a log-softmax at every position) and `True` (the default: each context
once, logits only where an ending is scored). Printed: wall time of each, the ratio, acc_norm of each and how many
items they score differently (0 expected in fp32; bf16's HFLM takes its log-softmax in bf16, ours in fp32). The CPU
model, its speed-deciding flags, threads and any instruction-set limits are printed: compare ratios within one run.

    .venv/bin/python scripts/bench_forgetting.py [--n 250] [--precision fp32 auto] [--out bench_forgetting.json]
"""
import argparse, json, os
from pathlib import Path

import torch

from slm_nb.core import ISA_LIMIT_VARS, env_info
from slm_nb.general import lm_eval_hellaswag, read_hellaswag, sample_items
from slm_nb.models import load_model, load_tokenizer, resolve_model
from slm_nb.precision import phase_precision


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--n', type=int, default=250, help='HellaSwag items (the main job checks 250)')
    ap.add_argument('--precision', nargs='+', default=['fp32', 'auto'], help='fp32, bf16 or auto (the probe: prefill)')
    ap.add_argument('--batch-size', type=int, default=16)
    ap.add_argument('--out', default=None, help='also write the results as JSON here')
    a = ap.parse_args()
    info = env_info()
    isa = {k: os.environ[k] for k in ISA_LIMIT_VARS if os.environ.get(k)}
    print(f"CPU: {info.get('cpu_model')}  flags: {info.get('cpu_speed_flags')}  torch {torch.__version__}  threads: {torch.get_num_threads()}"
          f"  instruction-set limits: {isa or 'none'}")
    path = resolve_model('smollm2-135m-instruct')
    tok, items = load_tokenizer(path), sample_items(read_hellaswag(), a.n, seed=0)
    rows = []
    for prec in a.precision:
        p = phase_precision(prec, 'prefill')
        model = load_model(path, p, 'cpu')
        lm_eval_hellaswag(model, tok, items[:4], a.batch_size)  # warm-up
        stock, shared = (lm_eval_hellaswag(model, tok, items, a.batch_size, share_contexts=s) for s in (False, True))
        differ = sum(x['acc_norm'] != y['acc_norm'] for x, y in zip(stock['items'], shared['items']))
        rows.append(dict(precision=prec, dtype=p, n=len(items), hflm_s=stock['wall_s'], shared_s=shared['wall_s'],
                         speedup=stock['wall_s'] / shared['wall_s'], hflm_acc_norm=stock['acc_norm'],
                         shared_acc_norm=shared['acc_norm'], items_scored_differently=differ))
        print(f"{prec} ({p}): HFLM {stock['wall_s']:.1f} s, each context once {shared['wall_s']:.1f} s = "
              f"{stock['wall_s'] / shared['wall_s']:.2f}x; acc_norm {stock['acc_norm']:.3f} vs {shared['acc_norm']:.3f}, "
              f"{differ} of {len(items)} items scored differently", flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps(dict(env={k: info.get(k) for k in ('cpu_model', 'cpu_speed_flags', 'torch')}, isa_limits=isa,
                                               threads=torch.get_num_threads(), rows=rows), indent=1))


if __name__ == '__main__':
    main()
