#!/usr/bin/env python
"""A decode lever, measured: the engine's growing KV cache (`slm_nb.engines.GrowingLayer`) vs transformers' default.

transformers' `DynamicCache` appends each step's keys and values with `torch.cat`, copying every layer's whole cache
at every step; `GrowingLayer` writes into spare room. This script runs `HFEngine.generate` with each, side by side in
one run, in pairs of alternating order (AB, then BA: a drifting machine hits both alike), on two shapes:

- short: 32 chat prompts of about 40 tokens, 64 new tokens each (the main job's evaluation is of this kind);
- long: 16 chat prompts of about 490 tokens, 256 new tokens each (Experiment 2's proofs are of this kind).

Prompts ask for long texts, so most rows use the whole budget. Reported per arm: wall time, time to the first token,
decode tokens/s (new tokens after the first, over the time after the first); the ratio growing/default per pair; and
how many greedy texts are identical. The CPU model, its speed-deciding flags, the thread count and the precision are
printed: compare ratios within one run only.

    .venv/bin/python scripts/bench_kvcache.py [--pairs 2] [--precision fp32] [--out bench_kvcache.json]
"""
import argparse, json, time
from pathlib import Path

import torch

import slm_nb.engines as engines
from slm_nb.core import cpu_model, cpu_speed_flags, env_info
from bench_linear import TOPICS as STORIES  # the same 32 story prompts as the pre-packing benchmark

BODY = " ".join(f"Let x_{k} be a real number with |x_{k}| < 1/{k + 2}." for k in range(20))
PROOFS = [f"Problem {i}. {BODY} Prove that the series of x_k times {i + 1} converges. Give every step in detail." for i in range(16)]
SHAPES = dict(short=(STORIES, 64), long=(PROOFS, 256))


def run(eng, arm:str, texts:list[str], tokens:int) -> tuple[dict, list[str]]:
    "One generate call of `texts` with the `arm` cache: timings and the texts."
    stock = engines.growing_cache
    if arm == 'default': engines.growing_cache = lambda model: None  # transformers' own DynamicCache
    try:
        t = time.perf_counter()
        gens = eng.generate([[{'role': 'user', 'content': x}] for x in texts], dict(max_new_tokens=tokens, batch_size=len(texts)))
        wall = time.perf_counter() - t
    finally: engines.growing_cache = stock
    ttft, end = max(g.ttft_s for g in gens), max(g.latency_s for g in gens)
    return (dict(wall_s=wall, ttft_s=ttft, generated=sum(g.generated_tokens for g in gens), prompt_tokens=max(g.prompt_tokens for g in gens),
                 decode_tokens_per_s=sum(g.generated_tokens - 1 for g in gens) / (end - ttft)), [g.text for g in gens])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--pairs', type=int, default=2); ap.add_argument('--precision', default='fp32')
    ap.add_argument('--shapes', default='short,long'); ap.add_argument('--out', default='bench_kvcache.json')
    a = ap.parse_args()
    eng = engines.HFEngine('smollm2-135m-instruct', precision=a.precision)
    eng.generate([[{'role': 'user', 'content': STORIES[0]}]], dict(max_new_tokens=4))  # warm-up
    rec = dict(env=env_info(), precision=eng.precision, shapes={})
    for shape in a.shapes.split(','):
        texts, tokens = SHAPES[shape]
        runs, outs = [], {}
        for p in range(a.pairs):
            pair = {}
            for arm in (('default', 'growing') if p % 2 == 0 else ('growing', 'default')):
                pair[arm], outs[arm] = run(eng, arm, texts, tokens)
                print(f"{shape} pair {p + 1} {arm}: {pair[arm]['decode_tokens_per_s']:.1f} decode tok/s, wall {pair[arm]['wall_s']:.1f} s", flush=True)
            pair['ratio'] = pair['growing']['decode_tokens_per_s'] / pair['default']['decode_tokens_per_s']
            pair['wall_ratio'] = pair['default']['wall_s'] / pair['growing']['wall_s']
            runs.append(pair)
        rec['shapes'][shape] = dict(pairs=runs, prompts=len(texts), new_tokens=tokens, same_text=sum(x == y for x, y in zip(outs['default'], outs['growing'])))
    Path(a.out).write_text(json.dumps(rec, indent=1))
    print(f"\nCPU: {cpu_model()} ({', '.join(cpu_speed_flags())}), {torch.get_num_threads()} torch threads, precision {eng.precision}")
    print('\n| shape | prompts x new tokens | longest prompt | pair | default decode tok/s | growing decode tok/s | decode ratio | wall ratio | same greedy text |\n|---|---|---|---|---|---|---|---|---|')
    for shape, s in rec['shapes'].items():
        for i, p in enumerate(s['pairs']):
            print(f"| {shape} | {s['prompts']} x {s['new_tokens']} | {p['default']['prompt_tokens']} | {i + 1} | {p['default']['decode_tokens_per_s']:.1f} | "
                  f"{p['growing']['decode_tokens_per_s']:.1f} | {p['ratio']:.2f}x | {p['wall_ratio']:.2f}x | {s['same_text']} of {s['prompts']} |")

if __name__ == '__main__':
    main()
