#!/usr/bin/env python
"""A kept lever, measured side by side: attention per example with the row split into the examples' parts, or sliced.

`slm_nb.trainers.segment_sdpa` attends each example of a padding-free row on its own. Slicing the row one example at
a time (`query[:, :, s:e]`) makes each slice's backward pass write its gradient into a zero-filled tensor the size of
the whole row: `n` examples cost `n` row-sized fills and additions per layer and tensor. Splitting the row in one
operation (`query.split(sizes, 2)`) has one backward step that joins the `n` gradients.

One layer's attention, forward and backward, on the main job's shape (batch 16 of about 44 tokens: 705 tokens; the
embedded model's 9 query and 3 key/value heads of 64), in fp32 (the precision a CPU attends in, in bf16 runs too),
the two arms alternated in one process and repeated; outputs and gradients must be equal bit for bit.
What it saves per training step is the difference times the number of layers.

The CPU model, its speed-deciding flags and the thread count are printed: compare ratios within one run only.

    .venv/bin/python scripts/bench_attention.py [--examples 16] [--length 44] [--layers 30] [--repeats 5] [--iters 30] [--out bench_attention.json]
"""
import argparse, json, time
from pathlib import Path

import torch
import torch.nn.functional as F

from slm_nb.core import cpu_model, cpu_speed_flags, env_info


def sliced(q, k, v, sizes):
    ends = torch.tensor(sizes).cumsum(0).tolist()
    return torch.cat([F.scaled_dot_product_attention(q[:, :, e - n:e], k[:, :, e - n:e], v[:, :, e - n:e], is_causal=True, enable_gqa=True)
                      for n, e in zip(sizes, ends)], dim=2)


def split(q, k, v, sizes):
    return torch.cat([F.scaled_dot_product_attention(a, b, c, is_causal=True, enable_gqa=True)
                      for a, b, c in zip(q.split(sizes, 2), k.split(sizes, 2), v.split(sizes, 2))], dim=2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--examples', type=int, default=16); ap.add_argument('--length', type=int, default=44)
    ap.add_argument('--heads', type=int, default=9); ap.add_argument('--kv-heads', type=int, default=3); ap.add_argument('--head-dim', type=int, default=64)
    ap.add_argument('--layers', type=int, default=30); ap.add_argument('--repeats', type=int, default=5); ap.add_argument('--iters', type=int, default=30)
    ap.add_argument('--out', default='bench_attention.json')
    a = ap.parse_args()
    sizes = [a.length + (i % 3) - 1 for i in range(a.examples)]  # similar lengths, not all equal
    n = sum(sizes)
    gen = torch.Generator().manual_seed(0)
    qkv = [torch.randn(1, h, n, a.head_dim, generator=gen, requires_grad=True) for h in (a.heads, a.kv_heads, a.kv_heads)]
    g = torch.randn(1, a.heads, n, a.head_dim, generator=gen)
    arms, times, outs = {'sliced': sliced, 'split': split}, {'sliced': [], 'split': []}, {}
    for f in arms.values():  # warm-up
        for _ in range(3): torch.autograd.grad(f(*qkv, sizes), qkv, g)
    for _ in range(a.repeats):
        for name, f in arms.items():
            t = time.perf_counter()
            for _ in range(a.iters):
                o = f(*qkv, sizes); gr = torch.autograd.grad(o, qkv, g)
            times[name].append((time.perf_counter() - t) / a.iters)
            outs[name] = (o.detach(), gr)
    same = torch.equal(outs['sliced'][0], outs['split'][0]) and all(torch.equal(x, y) for x, y in zip(outs['sliced'][1], outs['split'][1]))
    best = {k: min(v) for k, v in times.items()}
    res = dict(env=env_info(), args=vars(a), tokens=n, best_ms={k: 1e3 * v for k, v in best.items()},
               all_ms={k: [1e3 * x for x in v] for k, v in times.items()}, ratio=best['sliced'] / best['split'], bitwise_equal=same,
               saved_per_step_ms=1e3 * a.layers * (best['sliced'] - best['split']))
    Path(a.out).write_text(json.dumps(res, indent=1))
    print(f"one layer's attention, forward and backward, {a.examples} examples ({n} tokens), fp32: sliced {1e3 * best['sliced']:.2f} ms, "
          f"split {1e3 * best['split']:.2f} ms: {res['ratio']:.2f}x; equal bit for bit: {same}; "
          f"{res['saved_per_step_ms']:.0f} ms saved per training step of {a.layers} layers")
    print(f"CPU: {cpu_model()} ({', '.join(cpu_speed_flags())}), {torch.get_num_threads()} torch threads")


if __name__ == '__main__':
    main()
