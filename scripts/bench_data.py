"""Benchmark: load + tokenize N Alpaca-shaped records with slm_nb.data vs. datasets.map + the tokenizer directly.

Usage: python scripts/bench_data.py --n 100000 [--repeats 2]
Prints a human-readable summary, then one JSON line (the last line) with the numbers.
"""
import argparse, json, os, random, sys, tempfile, time
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1')


def make_alpaca(n: int, seed: int = 0) -> list[dict]:
    "N Alpaca-shaped records with realistic lengths (instruction ~12 words, input 40% of the time, output ~60 words)."
    rng = random.Random(seed)
    words = ('the a of to and in is for on with as by at from that this be are was it or an which you can use '
             'model data train answer question write explain list give three describe summarize example simple '
             'language small large number value result first second step reason because therefore however').split()
    def text(k): return ' '.join(rng.choice(words) for _ in range(k)).capitalize() + '.'
    return [{'instruction': text(rng.randint(6, 20)),
             'input': text(rng.randint(8, 30)) if rng.random() < 0.4 else '',
             'output': text(rng.randint(20, 100))} for _ in range(n)]


def ours(path, tok, max_length):
    from slm_nb.data import load_records
    from slm_nb.sft import tokenize_sft
    ds = load_records(path)
    tds, rep = tokenize_sft(ds, tok, max_length=max_length)
    return len(tds), rep


def direct(path, tok, max_length):
    "What a script would do: json.load, Dataset.from_list, datasets.map with the chat template and the tokenizer."
    from datasets import Dataset
    raw = json.load(open(path, encoding='utf-8'))
    ds = Dataset.from_list(raw)
    def fn(b):
        convs = [[{'role': 'user', 'content': f"{i}\n\n{x}" if x else i}, {'role': 'assistant', 'content': o}]
                 for i, x, o in zip(b['instruction'], b['input'], b['output'])]
        texts = tok.apply_chat_template(convs, tokenize=False)
        return tok(texts, add_special_tokens=False, truncation=True, max_length=max_length)
    out = ds.map(fn, batched=True, batch_size=1000, remove_columns=ds.column_names)
    return len(out), None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--n', type=int, default=100_000)
    ap.add_argument('--repeats', type=int, default=2)
    ap.add_argument('--max-length', type=int, default=512)
    args = ap.parse_args()
    import datasets
    datasets.disable_progress_bars()
    from slm_nb.models import tiny_model, load_tokenizer
    tok = load_tokenizer(tiny_model())  # the real SmolLM2 tokenizer and chat template
    with tempfile.TemporaryDirectory() as d:
        path = Path(d, 'alpaca_100k.json')
        path.write_text(json.dumps(make_alpaca(args.n), ensure_ascii=False))
        mb = path.stat().st_size / 2**20
        times = {'ours': [], 'direct': []}
        for _ in range(args.repeats):  # alternate, so both see the same machine load
            for name, fn in (('direct', direct), ('ours', ours)):
                t0 = time.perf_counter(); n, rep = fn(path, tok, args.max_length); dt = time.perf_counter() - t0
                assert n == args.n, (name, n)
                times[name].append(dt)
                if rep: last_rep = rep
    best = {k: min(v) for k, v in times.items()}
    res = dict(n=args.n, file_mb=round(mb, 1), cpu_count=os.cpu_count(),
               ours_s=round(best['ours'], 2), direct_s=round(best['direct'], 2),
               ours_records_per_s=round(args.n / best['ours']), direct_records_per_s=round(args.n / best['direct']),
               ratio=round(best['ours'] / best['direct'], 2), mean_tokens=round(last_rep['mean_tokens'], 1),
               all_times_s={k: [round(x, 2) for x in v] for k, v in times.items()})
    print(f"{args.n} Alpaca records ({mb:.1f} MB JSON), best of {args.repeats}:")
    print(f"  slm_nb load_records + tokenize_sft: {res['ours_s']:.2f} s = {res['ours_records_per_s']:,} records/s")
    print(f"  json.load + datasets.map(tokenizer): {res['direct_s']:.2f} s = {res['direct_records_per_s']:,} records/s")
    print(f"  ratio (ours / direct): {res['ratio']:.2f}x")
    print(json.dumps(res))


if __name__ == '__main__':
    sys.exit(main())
