#!/usr/bin/env python
"""A candidate lever, measured before it is built: fp32 linear layers pre-packed by oneDNN vs torch's default path.

`slm_nb.precision.pack_linear_weights` pre-packs bf16 layers only. On a CPU without bf16 matrix instructions (the
AVX2-only kind) every phase runs in fp32, through torch's default fp32 product (MKL's sgemm here). This script
measures, side by side in one run, what pre-packing the fp32 weights too would give:

(1) each linear product of the embedded model (its projections and the LM head) at decode and prefill row counts:
    `F.linear` against oneDNN's pre-packed `_linear_pointwise`, GFLOP/s and ratio, outputs compared;
(2) end to end: HFEngine in fp32 generating a fixed budget for 1 and 32 prompts (EOS ignored by asking for long
    stories), with the fp32 layers left alone, all pre-packed, and only the LM head pre-packed (a local variant of
    the bf16 packing); the greedy texts are compared with the plain run's.

The bf16 packing's own probe (`packing_works`) is bypassed for the fp32 arm: it asks whether bf16 products work, which
an AVX2-only CPU refuses; the fp32 products are compared with `F.linear` in (1).

The CPU model, its speed-deciding flags and the thread count are printed: compare ratios within one run only.

    .venv/bin/python scripts/bench_linear.py [--rows 1,4,16,32,64,256] [--tokens 64] [--out bench_linear.json]
"""
import argparse, json, time
from pathlib import Path

import torch
import torch.nn.functional as F

import slm_nb.precision as prec
from slm_nb.core import cpu_model, cpu_speed_flags, env_info
from slm_nb.engines import HFEngine
from slm_nb.models import resolve_model
from slm_nb.plan import load_config
from slm_nb.utilization import training_shapes

TOPICS = [f"Write a long story about a {w} who finds a {v}." for w in ('cat', 'dog', 'king', 'girl', 'robot', 'baker', 'pilot', 'fox')
          for v in ('key', 'map', 'coin', 'book')]


def best_s(f, seconds=0.3) -> float:
    "The best single-call time of `f` over about `seconds` (after two warm-ups)."
    f(); f()
    times, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 3:
        t = time.perf_counter(); f(); times.append(time.perf_counter() - t)
    return min(times)


def products(rows) -> list[dict]:
    "F.linear vs the pre-packed product for each (k, n) of the embedded model at each row count."
    kn = sorted({(k, n) for _, k, n in training_shapes(load_config(str(resolve_model('smollm2-135m-instruct'))), 64)})
    out, g = [], torch.Generator().manual_seed(0)
    for m in rows:
        for k, n in kn:
            x, w = torch.randn(m, k, generator=g), torch.randn(n, k, generator=g) / k ** 0.5
            with torch.inference_mode():
                pw = torch.ops.mkldnn._reorder_linear_weight(w, 1)  # as slm_nb's PackedLinear packs: one layout for every row count
                packed = lambda: torch.ops.mkldnn._linear_pointwise(x, pw, None, 'none', [], '')
                plain = lambda: F.linear(x, w)
                diff = (plain() - packed()).abs().max().item()
                t_plain, t_packed = best_s(plain), best_s(packed)
            gf = 2 * m * k * n / 1e9
            out.append(dict(rows=m, k=k, n=n, plain_gflops=gf / t_plain, packed_gflops=gf / t_packed, ratio=t_plain / t_packed, max_abs_diff=diff))
    return out


def fp32_packable(c) -> bool:
    "The bf16 rule with fp32 weights allowed too (the lever under test)."
    if type(c) is not torch.nn.Linear or c._forward_hooks or c._forward_pre_hooks: return False
    w = c._parameters.get('weight')
    return isinstance(w, torch.Tensor) and w.dtype in (torch.float32, torch.bfloat16) and w.device.type == 'cpu'


def engine_runs(tokens: int) -> dict:
    "Decode tokens/s at 1 and 32 prompts: fp32 layers plain, all pre-packed, the LM head alone pre-packed; greedy tokens compared."
    res, outs = {}, {}
    vocab = load_config(str(resolve_model('smollm2-135m-instruct')))['vocab_size']
    rules = dict(packed=fp32_packable, lm_head=lambda c: fp32_packable(c) and c.out_features == vocab)
    for name in ('plain', 'packed', 'lm_head'):
        rule, works = prec._packable, prec.packing_works  # the bf16 probe may refuse (no bf16 instructions): fp32 is checked above
        if name in rules: prec._packable, prec.packing_works = rules[name], lambda: True
        try: eng = HFEngine('smollm2-135m-instruct', precision='fp32')
        finally: prec._packable, prec.packing_works = rule, works
        assert eng.n_packed == {'plain': 0, 'lm_head': 1}.get(name, eng.n_packed) and (eng.n_packed > 0) == (name in rules), f"{name}: {eng.n_packed} layers pre-packed"
        eng.generate([[{'role': 'user', 'content': TOPICS[0]}]], dict(max_new_tokens=4))  # warm-up
        for n in (1, 32):
            prompts = [[{'role': 'user', 'content': t}] for t in TOPICS[:n]]
            t = time.perf_counter(); gens = eng.generate(prompts, dict(max_new_tokens=tokens, batch_size=32)); wall = time.perf_counter() - t
            decode = max(g.latency_s for g in gens) - max(g.ttft_s for g in gens)
            res[f"{name}_rows{n}"] = dict(n_packed=eng.n_packed, wall_s=wall, ttft_s=max(g.ttft_s for g in gens),
                                          generated=sum(g.generated_tokens for g in gens), decode_tokens_per_s=sum(g.generated_tokens - 1 for g in gens) / decode)
            outs[(name, n)] = [g.text for g in gens]
        eng.close()
    for name in rules:
        for n in (1, 32):
            res[f"rows{n}_{name}_over_plain"] = res[f"{name}_rows{n}"]['decode_tokens_per_s'] / res[f"plain_rows{n}"]['decode_tokens_per_s']
            res[f"rows{n}_{name}_same_text"] = sum(a == b for a, b in zip(outs[('plain', n)], outs[(name, n)]))
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--rows', default='1,4,16,32,64,256'); ap.add_argument('--tokens', type=int, default=64)
    ap.add_argument('--out', default='bench_linear.json')
    a = ap.parse_args()
    rec = dict(env=env_info(), products=products([int(r) for r in a.rows.split(',')]), engine=engine_runs(a.tokens))
    Path(a.out).write_text(json.dumps(rec, indent=1))
    print(f"CPU: {cpu_model()} ({', '.join(cpu_speed_flags())}), {torch.get_num_threads()} torch threads, fp32")
    print('\n| rows | k x n | F.linear GFLOP/s | pre-packed GFLOP/s | ratio | max abs diff |\n|---|---|---|---|---|---|')
    for p in rec['products']:
        print(f"| {p['rows']} | {p['k']} x {p['n']} | {p['plain_gflops']:.0f} | {p['packed_gflops']:.0f} | {p['ratio']:.2f}x | {p['max_abs_diff']:.1e} |")
    e = rec['engine']
    print('\n| prompts | layers pre-packed | plain decode tok/s | pre-packed decode tok/s | ratio | same greedy text |\n|---|---|---|---|---|---|')
    for name, what in (('packed', 'all'), ('lm_head', 'the LM head')):
        for n in (1, 32):
            print(f"| {n} | {what} ({e[f'{name}_rows{n}']['n_packed']}) | {e[f'plain_rows{n}']['decode_tokens_per_s']:.1f} | "
                  f"{e[f'{name}_rows{n}']['decode_tokens_per_s']:.1f} | {e[f'rows{n}_{name}_over_plain']:.2f}x | {e[f'rows{n}_{name}_same_text']} of {n} |")

if __name__ == '__main__':
    main()
