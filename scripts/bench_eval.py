#!/usr/bin/env python
"""Two kept levers of the held-out evaluation, measured side by side: fuller generation batches and a batched reference NLL.

The main job evaluates the base and the tuned model on 100 held-out problems: greedy answers (exact match) and the
likelihood of the references (NLL). Each arm below runs in one process, alternated with the others and repeated; the
best time of each is compared, and the outputs must agree between arms.

Generation (the embedded model, the main job's 100 held-out arithmetic prompts, `--tokens` new tokens):
- `batches of 32`: the main job's old `eval_batch_size` (32, 32, 32 and 4 prompts);
- `one batch`: all of them in one batch (`eval_batch_size` 100, the main job's default now).

Reference NLL (the same records and their references):
- `one at a time`: the old loop, each record alone, logits at every position;
- `batched`: `slm_nb.evaluation.reference_nll`, records by length up to `batch_tokens` padded tokens, logits only at the
  positions that predict a reference token.

The CPU model, its speed-deciding flags and the thread count are printed: compare ratios within one run only.

    .venv/bin/python scripts/bench_eval.py [--precisions fp32,bf16] [--n 100] [--tokens 32] [--repeats 2] [--out bench_eval.json]
"""
import argparse, json, time, warnings
from pathlib import Path
warnings.filterwarnings('ignore')

import torch
import torch.nn.functional as F

from slm_nb.core import cpu_model, cpu_speed_flags, env_info
from slm_nb.engines import GenConfig, HFEngine
from slm_nb.evaluation import reference_nll
from slm_nb.sft import tokenize_sft
from slm_nb.tasks import task_splits


@torch.inference_mode()
def nll_one_at_a_time(engine, ds) -> list[float]:
    "The reference NLL as it was computed before: each record alone, logits at every position."
    tok_ds, _ = tokenize_sft(ds, engine.tokenizer, max_length=engine.context)
    out = []
    for ids, labels in zip(tok_ds['input_ids'], tok_ds['labels']):
        y = torch.tensor(labels[1:])
        logits = engine.model(input_ids=torch.tensor([ids])).logits[0, :-1]
        keep = y != -100
        out.append(F.cross_entropy(logits[keep].float(), y[keep], reduction='sum').item() / int(keep.sum()))
    return out


def timed(f):
    t = time.perf_counter(); out = f(); return time.perf_counter() - t, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--precisions', default='fp32,bf16'); ap.add_argument('--n', type=int, default=100)
    ap.add_argument('--tokens', type=int, default=32); ap.add_argument('--repeats', type=int, default=2)
    ap.add_argument('--out', default='bench_eval.json')
    a = ap.parse_args()
    ds = task_splits('arithmetic', 2000, a.n, seed=0)[1]  # the main job's held-out split at its defaults
    res = dict(env=env_info(), args=vars(a), generation={}, reference_nll={})
    for prec in a.precisions.split(','):
        eng = HFEngine('smollm2-135m-instruct', precision=prec)
        prompts = ds['prompt']
        ids = eng.encode(prompts, eng.gen_config({}))
        by_len = [prompts[i] for i in sorted(range(len(ids)), key=lambda i: -len(ids[i]))]
        cfg = lambda bs: GenConfig(max_new_tokens=a.tokens, batch_size=bs)
        arms = {'batches of 32': lambda: eng.generate(by_len, cfg(32)), 'one batch': lambda: eng.generate(by_len, cfg(len(by_len)))}
        eng.generate(by_len[:8], cfg(8))  # warm-up
        times, texts = {k: [] for k in arms}, {}
        for _ in range(a.repeats):
            for k, f in arms.items():
                t, out = timed(f); times[k].append(t); texts[k] = [g.text for g in out]
        best = {k: min(v) for k, v in times.items()}
        same = sum(x == y for x, y in zip(texts['batches of 32'], texts['one batch']))
        ratio = best['batches of 32'] / best['one batch']
        res['generation'][prec] = dict(best_s=best, all_s=times, same_texts=same, n=len(by_len), precision=eng.precision, ratio=ratio)
        print(f"generation, {prec}, {len(by_len)} prompts x {a.tokens} tokens: batches of 32 {best['batches of 32']:.2f} s, "
              f"one batch {best['one batch']:.2f} s ({ratio:.2f}x); the same texts: {same} of {len(by_len)}", flush=True)
        times = {'one at a time': [], 'batched': []}
        for _ in range(a.repeats):
            t, old = timed(lambda: nll_one_at_a_time(eng, ds)); times['one at a time'].append(t)
            t, new = timed(lambda: reference_nll(eng, ds)); times['batched'].append(t)
        best = {k: min(v) for k, v in times.items()}
        diff = max(abs(x - y['nll']) for x, y in zip(old, new['items']))
        res['reference_nll'][prec] = dict(best_s=best, all_s=times, ratio=best['one at a time'] / best['batched'], max_abs_diff=diff,
                                          n_tokens=new['n_tokens'])
        print(f"reference NLL, {prec}, {len(ds)} records: one at a time {best['one at a time']:.2f} s, batched {best['batched']:.2f} s "
              f"({best['one at a time'] / best['batched']:.2f}x); largest |difference| of an item's NLL {diff:.1e}", flush=True)
        eng.close()
    Path(a.out).write_text(json.dumps(res, indent=1))
    print(f"CPU: {cpu_model()} ({', '.join(cpu_speed_flags())}), {torch.get_num_threads()} torch threads")


if __name__ == '__main__':
    main()
