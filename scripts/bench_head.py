#!/usr/bin/env python
"""A kept lever, measured side by side: the LM head fed a contiguous input (`slm_nb.models.contiguous_head`) or not.

Generation computes logits at each row's last position only, through a slice `hidden[:, -1:, :]` that is not
contiguous. With a frozen head weight (a model with a LoRA adapter, or merged) torch's product then copies the whole
head weight once per row before a batched product, in bf16 on a CPU (fp32 takes the ordinary path).

Each arm, alternated in one process and repeated: HFEngine with a random LoRA adapter on the embedded model (not
merged: what evaluation and the slice scored during training run), greedy generation of `--tokens` new tokens for
`--prompts` arithmetic prompts in batches of `--batch`, with the hook on the head and without it; then the HellaSwag
scorer of the forgetting check on a merged adapter. The texts and the scores must agree between arms.

The CPU model, its speed-deciding flags and the thread count are printed: compare ratios within one run only.

    .venv/bin/python scripts/bench_head.py [--precisions bf16,fp32] [--prompts 64] [--tokens 32] [--batch 32] [--repeats 2] [--items 60] [--out bench_head.json]
"""
import argparse, json, tempfile, time, warnings
from pathlib import Path
warnings.filterwarnings('ignore')

import torch

from slm_nb.core import cpu_model, cpu_speed_flags, env_info
from slm_nb.engines import HFEngine, GenConfig
from slm_nb.models import contiguous_head, load_model, resolve_model, load_tokenizer
from slm_nb.tasks import task_splits
from slm_nb.testing import random_adapter


def set_hook(model, on:bool):
    "Put the contiguous-input hook on `model`'s head, or take it off."
    head = model.get_output_embeddings()
    head._forward_pre_hooks.clear(); head._slm_contiguous = False
    if on: contiguous_head(model)


def timed(f):
    t = time.perf_counter(); out = f(); return time.perf_counter() - t, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--precisions', default='bf16,fp32'); ap.add_argument('--prompts', type=int, default=64)
    ap.add_argument('--tokens', type=int, default=32); ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--repeats', type=int, default=2); ap.add_argument('--items', type=int, default=60)
    ap.add_argument('--out', default='bench_head.json')
    a = ap.parse_args()
    base = resolve_model('smollm2-135m-instruct')
    prompts = [r['prompt'] for r in task_splits('arithmetic', 10, a.prompts, seed=0)[1]]
    cfg = GenConfig(max_new_tokens=a.tokens, batch_size=a.batch)
    res = dict(env=env_info(), args=vars(a), generation={}, hellaswag={})
    with tempfile.TemporaryDirectory() as d:
        adapter = random_adapter(Path(d) / 'adapter', base, r=16, init_scale=0.01)
        for prec in a.precisions.split(','):
            eng = HFEngine(base, adapter=str(adapter), precision=prec)
            eng.generate(prompts[:a.batch], GenConfig(max_new_tokens=4, batch_size=a.batch))  # warm-up
            times, texts = {'without': [], 'with': []}, {}
            for _ in range(a.repeats):
                for arm in ('without', 'with'):
                    for m in eng.models.values(): set_hook(m, arm == 'with')
                    t, out = timed(lambda: eng.generate(prompts, cfg))
                    times[arm].append(t); texts[arm] = [o.text for o in out]
            eng.close()
            n_tok = a.prompts * a.tokens
            best = {k: min(v) for k, v in times.items()}
            res['generation'][prec] = dict(best_s=best, all_s=times, ratio=best['without'] / best['with'],
                                           same_texts=texts['without'] == texts['with'], budget_tokens=n_tok)
            print(f"generation, {prec}, adapter not merged, {a.prompts} prompts x {a.tokens} tokens in batches of {a.batch}: "
                  f"without the hook {best['without']:.2f} s, with it {best['with']:.2f} s: {best['without'] / best['with']:.2f}x; "
                  f"same texts: {texts['without'] == texts['with']}", flush=True)
        if a.items:
            from peft import PeftModel
            from slm_nb.general import lm_eval_hellaswag, read_hellaswag, sample_items
            items, tok = sample_items(read_hellaswag(None), a.items, 0), load_tokenizer(base)
            for prec in a.precisions.split(','):
                m = PeftModel.from_pretrained(load_model(base, prec), str(adapter)).merge_and_unload().eval()
                lm_eval_hellaswag(m, tok, items[:8], 16)  # warm-up
                times, scores = {'without': [], 'with': []}, {}
                for _ in range(a.repeats):
                    for arm in ('without', 'with'):
                        set_hook(m, arm == 'with')
                        t, out = timed(lambda: lm_eval_hellaswag(m, tok, items, 16))
                        times[arm].append(t); scores[arm] = [x['acc_norm'] for x in out['items']]
                best = {k: min(v) for k, v in times.items()}
                res['hellaswag'][prec] = dict(best_s=best, all_s=times, ratio=best['without'] / best['with'],
                                              same_scores=scores['without'] == scores['with'], items=a.items)
                print(f"HellaSwag scoring, {prec}, merged adapter, {a.items} items: without the hook {best['without']:.2f} s, "
                      f"with it {best['with']:.2f} s: {best['without'] / best['with']:.2f}x; same scores: {scores['without'] == scores['with']}", flush=True)
    Path(a.out).write_text(json.dumps(res, indent=1))
    print(f"CPU: {cpu_model()} ({', '.join(cpu_speed_flags())}), {torch.get_num_threads()} torch threads")


if __name__ == '__main__':
    main()
