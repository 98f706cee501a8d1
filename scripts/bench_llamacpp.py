#!/usr/bin/env python
"""One prompt at a time on this CPU: transformers (HFEngine) vs llama.cpp (LlamaCppEngine), side by side in one run.

The embedded model answers one chat prompt with a fixed budget (greedy, EOS ignored by asking for a long answer);
median of `--repeats` runs per engine after one warm-up. llama.cpp runs the shipped Q4_1 file and files exported
here by slm_nb.export (f16, q8_0, q4_k_m), so the table also shows what the export costs in speed. Ratios are
against HFEngine at precision='auto' in the same run; the CPU model, its speed-deciding flags and the precision
used are printed with them (these machines differ between sessions: compare ratios within one run only).

    .venv/bin/python scripts/bench_llamacpp.py [--tokens 128] [--repeats 3] [--out bench_llamacpp.json]
"""
import argparse, json, os, statistics, sys, tempfile, time
from pathlib import Path

from slm_nb.core import env_info
from slm_nb.engines import HFEngine
from slm_nb.engines_llamacpp import LlamaCppEngine
from slm_nb.export import quantize_gguf, write_gguf
from slm_nb.models import resolve_model

PROMPT = [{'role': 'user', 'content': 'Write a long, detailed story about a lighthouse keeper who finds a message in a bottle.'}]


def timed(engine, tokens: int, repeats: int) -> dict:
    gen = dict(max_new_tokens=tokens)
    engine.generate([PROMPT], gen)  # warm-up
    runs = [engine.generate([PROMPT], gen)[0] for _ in range(repeats)]
    tps = [g.generated_tokens / (g.latency_s - g.ttft_s) if g.generated_tokens > 1 else None for g in runs]
    return dict(decode_tokens_per_s=statistics.median([t for t in tps if t]), ttft_s=statistics.median(g.ttft_s for g in runs),
                generated_tokens=statistics.median(g.generated_tokens for g in runs))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--tokens', type=int, default=128); ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--out', default=None)
    a = ap.parse_args()
    info = env_info()
    threads = os.cpu_count()
    rows = {}
    for prec in ('auto', 'bf16'):
        with HFEngine('smollm2-135m-instruct', precision=prec) as e: rows[f'hf {prec} ({str(e.dtype).split(".")[-1]})'] = timed(e, a.tokens, a.repeats)
    with tempfile.TemporaryDirectory() as d:
        f16 = write_gguf(resolve_model('smollm2-135m-instruct'), Path(d)/'m.f16.gguf')
        files = {'llama.cpp shipped Q4_1': 'smollm2-135m-instruct', 'llama.cpp exported f16': f16}
        for ty in ('q8_0', 'q4_k_m'): files[f'llama.cpp exported {ty}'] = quantize_gguf(f16, Path(d)/f'm.{ty}.gguf', ty)[0]
        for name, f in files.items():
            with LlamaCppEngine(f, n_ctx=1024, n_threads=threads) as e: rows[name] = timed(e, a.tokens, a.repeats)
    ref = rows[next(iter(rows))]['decode_tokens_per_s']
    print(f"CPU: {info.get('cpu_model')}  flags: {info.get('cpu_speed_flags')}  threads: {threads}; {a.tokens} new tokens, median of {a.repeats}")
    print(f"{'engine':32s} {'decode tok/s':>12s} {'TTFT ms':>8s} {'x hf auto':>9s}")
    for k, r in rows.items():
        r['ratio_vs_hf_auto'] = r['decode_tokens_per_s'] / ref
        print(f"{k:32s} {r['decode_tokens_per_s']:12.1f} {1000 * r['ttft_s']:8.0f} {r['ratio_vs_hf_auto']:9.2f}")
    if a.out: Path(a.out).write_text(json.dumps(dict(env={k: info.get(k) for k in ('cpu_model', 'cpu_speed_flags', 'torch')}, threads=threads, tokens=a.tokens, rows=rows), indent=1))


if __name__ == '__main__':
    sys.exit(main())
