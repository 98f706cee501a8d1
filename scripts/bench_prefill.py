#!/usr/bin/env python
"""The planned prefill (`slm_nb.engines.prefill_plan`) against one padded pass, side by side, on the two experiments' batches.

A padded batch computes every row at the longest row's width, and every row computes the chat template's shared start
again. The planned prefill reads the shared prefix once and the rest of the rows in groups of near-equal length.
Both arms are `HFEngine.generate` on the same engine (`plan_prefill` switched between calls), in one process,
alternated and repeated; the best time of each is compared and the greedy texts must agree.

- `main job`: its 100 held-out arithmetic prompts in one batch (`eval_batch_size` 100), `--tokens` new tokens
  (32, the main job's budget);
- `Experiment 2`: the 39 DEMI-MathAnalysis benchmark problems with its system message in one batch (`gen_batch_size`
  40), `--demi-tokens` new tokens (64 by default, to keep the run short; the experiment's budget is 384, and the
  prefill's saving per batch does not depend on it).

The CPU model, its speed-deciding flags, the thread count and each phase's precision are printed: compare ratios
within one run only.

    .venv/bin/python scripts/bench_prefill.py [--precision auto] [--tokens 32] [--demi-tokens 64] [--repeats 2] [--out bench_prefill.json]
"""
import argparse, json, time, warnings
from pathlib import Path
warnings.filterwarnings('ignore')

import torch

from slm_nb.core import cpu_model, cpu_speed_flags, env_info
from slm_nb.data import load_records
from slm_nb.engines import GenConfig, HFEngine, prefill_plan
from slm_nb.tasks import task_splits

DEMI_SYSTEM = 'Prove the statement, or solve the problem, rigorously and step by step.'  # math_judge's default `system`


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--precision', default='auto'); ap.add_argument('--tokens', type=int, default=32)
    ap.add_argument('--demi-tokens', type=int, default=64); ap.add_argument('--repeats', type=int, default=2)
    ap.add_argument('--out', default='bench_prefill.json')
    a = ap.parse_args()
    eng = HFEngine('smollm2-135m-instruct', precision=a.precision)
    work = {'main job': (list(task_splits('arithmetic', 2000, 100, seed=0)[1]['prompt']), a.tokens),
            'Experiment 2': ([r['prompt'] for r in load_records('demi:benchmark', system=DEMI_SYSTEM)], a.demi_tokens)}
    res = dict(env=env_info(), args=vars(a), precision=eng.precision, workloads={})
    eng.generate(work['main job'][0][:4], GenConfig(max_new_tokens=4))  # warm-up
    for name, (prompts, tokens) in work.items():
        cfg = GenConfig(max_new_tokens=tokens, batch_size=len(prompts))
        ids = eng.encode(prompts, eng.gen_config(cfg))
        plan = prefill_plan(ids)
        width = max(len(r) for r in ids) - 1
        planned_pos = plan[0] + sum((len(ids[g[0]]) - 1 - plan[0]) * len(g) for g in plan[1]) if plan else None
        times, texts = {'padded': [], 'planned': []}, {}
        for rep in range(a.repeats):
            for arm in (['padded', 'planned'] if rep % 2 == 0 else ['planned', 'padded']):
                eng.plan_prefill = arm == 'planned'
                t = time.perf_counter(); out = eng.generate(prompts, cfg); times[arm].append(time.perf_counter() - t)
                texts[arm] = [g.text for g in out]
        eng.plan_prefill = True
        best = {k: min(v) for k, v in times.items()}
        same = sum(x == y for x, y in zip(texts['padded'], texts['planned']))
        res['workloads'][name] = dict(n=len(prompts), new_tokens=tokens, shared_prefix=plan[0] if plan else 0,
                                      groups=len(plan[1]) if plan else None, padded_positions=len(ids) * width,
                                      planned_positions=planned_pos, best_s=best, all_s=times, ratio=best['padded'] / best['planned'],
                                      same_texts=same)
        print(f"{name}: {len(prompts)} prompts ({min(map(len, ids))}-{max(map(len, ids))} tokens) x {tokens} new tokens, one batch; "
              f"prefill positions padded {len(ids) * width} vs planned {planned_pos} (shared prefix {plan[0] if plan else 0}, "
              f"{len(plan[1]) if plan else 0} groups); padded {best['padded']:.2f} s, planned {best['planned']:.2f} s "
              f"({best['padded'] / best['planned']:.2f}x); the same texts: {same} of {len(prompts)}", flush=True)
    eng.close()
    Path(a.out).write_text(json.dumps(res, indent=1))
    print(f"CPU: {cpu_model()} ({', '.join(cpu_speed_flags())}), {torch.get_num_threads()} torch threads; precision {res['precision']}")


if __name__ == '__main__':
    main()
