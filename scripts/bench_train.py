#!/usr/bin/env python
"""Training benchmark: the same LoRA fine-tune several ways, in one run, printed as ratios.

(a) TRL defaults in fp32 (what a user gets without slm_nb): SFTTrainer on TRL's conversational
    prompt-completion data, stock collator and loss.
(b) slm_nb's trainer with its defaults on CPU: bf16 (frozen base stored in bf16, fp32 adapters, autocast),
    padding-free batches and the completion-logits-only loss (LM head only where the loss needs it).
(b0) ablation: (b) with the stock loss (LM head at every position), to show where (b)'s gain comes from.
(c) (b) plus best-fit packing into max_length rows.
(d) ablation: (b) with the for-each AdamW instead of torch's fused one (the default since the run that kept it).
(e) ablation: (b) with transformers' masked attention over the whole padding-free row instead of attention per
    example (`segment_attention`, the default since the run that kept it).
(f) ablation: (b) with PEFT's own LoRA forward (a multiply and an add after the adapter's product, and in bf16 a cast
    of the layer's input) instead of the update accumulated into the base product (`fused_lora`, the default since
    the run that kept it).

Each trains the embedded SmolLM2-135M-Instruct with LoRA r=16 on all linear layers, on the arithmetic task, for
the same steps and batch, then is evaluated on the same held-out set with the same engine: exact match (greedy) and
the mean NLL of the reference answers (the held-out loss).

    .venv/bin/python scripts/bench_train.py [--steps 60] [--n-test 100] [--only a,b,b0,c,d,e,f] [--precision auto|fp32] [--out bench_train.json]
"""
import argparse, json, time, warnings
from pathlib import Path
warnings.filterwarnings('ignore')

from slm_nb.models import resolve_model, load_tokenizer
from slm_nb.tasks import task_splits
from slm_nb.sft import to_trl
from slm_nb.engines import HFEngine, GenConfig
from slm_nb.evaluation import evaluate, reference_nll
from slm_nb.trainers import TrainConfig, batch_tokens, run_flops, token_counts, train
from slm_nb.plan import load_config
from slm_nb.utilization import matmul_peak, mfu, training_shapes
from slm_nb.core import cpu_model, cpu_speed_flags, env_info, measure, seed_everything


def trl_defaults(train_ds, steps, batch, lr, out):
    "TRL SFTTrainer + PEFT LoRA as its docs show it, fp32 (bf16=False), conversational prompt-completion data."
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import SFTConfig, SFTTrainer
    path = resolve_model('smollm2-135m-instruct')
    seed_everything(0)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    args = SFTConfig(output_dir=str(out / 'ckpt'), max_steps=steps, per_device_train_batch_size=batch, learning_rate=lr,
                     warmup_steps=0.05, logging_steps=5, report_to=[], use_cpu=True, bf16=False, save_strategy='no',
                     max_length=256, disable_tqdm=True, seed=0)
    times = []
    class T(TrainerCallback):
        def on_step_begin(self, *a, **k): self.t = time.perf_counter()
        def on_step_end(self, *a, **k): times.append(time.perf_counter() - self.t)
    fed = []
    class Counting(SFTTrainer):  # the trainers' own counter, with the stock loss (logits at every position)
        def training_step(self, model, inputs, num_items_in_batch=None):
            fed.append(batch_tokens(inputs, completion_logits_only=False)); return super().training_step(model, inputs, num_items_in_batch)
    tr = Counting(model=model, args=args, train_dataset=to_trl(train_ds), processing_class=load_tokenizer(path),
                    peft_config=LoraConfig(r=16, lora_alpha=32, target_modules='all-linear', task_type='CAUSAL_LM'),
                    callbacks=[T()])
    n_tokens = sum(len(x) for x in tr.train_dataset['input_ids']) / len(tr.train_dataset)
    peak = matmul_peak(training_shapes(load_config(path), batch * n_tokens), 'fp32')
    with measure() as m: tr.train()
    tr.save_model(str(out / 'adapter'))
    load_tokenizer(path).save_pretrained(out / 'adapter')
    losses = [h['loss'] for h in tr.state.log_history if 'loss' in h]
    n = token_counts(sum(fed))
    flops = run_flops(TrainConfig(lora_r=16), load_config(path), n)
    return dict(tokens_per_s=n['trained_tokens'] / m.wall_s, s_per_step=sorted(times)[len(times) // 2],
                wall_s=m.wall_s, peak_rss_mb=m.peak_rss_mb, final_loss=losses[-1], precision='fp32',
                gflops_per_token=flops['per_token'] / 1e9, peak_gflops=peak['gflops'], mfu=mfu(flops['total'], m.wall_s, peak['gflops'])), out / 'adapter'


def ours(train_ds, steps, batch, lr, out, fast=True, packing=False, precision='auto', **kw):
    cfg = TrainConfig(max_steps=steps, batch_size=batch, learning_rate=lr, warmup_ratio=0.05, logging_steps=5,
                      completion_logits_only=fast, padding_free=True, packing=packing, precision=precision, **kw)
    met = train(cfg, train_ds, run_dir=out)
    return dict(tokens_per_s=met['tokens_per_s'], s_per_step=met['s_per_step'], wall_s=met['train_wall_s'],
                peak_rss_mb=met['peak_rss_mb'], final_loss=met['final_loss'], precision=met['precision'],
                gflops_per_token=met['train_flops_per_token'] / 1e9, peak_gflops=met['matmul_peak_gflops'], mfu=met['mfu']), out / 'adapter'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--steps', type=int, default=60); ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--lr', type=float, default=1e-3); ap.add_argument('--n-test', type=int, default=100)
    ap.add_argument('--only', default=None, help='comma-separated run names to keep (e.g. a,b,b0): the rest are skipped')
    ap.add_argument('--precision', default='auto', help="slm_nb runs' precision (auto: bf16 where the CPU has it; fp32 shows what an AVX2-only CPU gets)")
    ap.add_argument('--out', default='bench_train.json'); ap.add_argument('--work', default='/tmp/slm_nb_bench_train')
    a = ap.parse_args()
    train_ds, test_ds = task_splits('arithmetic', 2000, a.n_test, seed=0)
    work = Path(a.work); work.mkdir(parents=True, exist_ok=True)
    res = {}
    for name, fn in [('a_trl_defaults_fp32', lambda o: trl_defaults(train_ds, a.steps, a.batch, a.lr, o)),
                     ('b_slm_nb_defaults', lambda o: ours(train_ds, a.steps, a.batch, a.lr, o, precision=a.precision)),
                     ('b0_ablation_stock_loss', lambda o: ours(train_ds, a.steps, a.batch, a.lr, o, precision=a.precision, fast=False)),
                     ('c_plus_packing', lambda o: ours(train_ds, a.steps, a.batch, a.lr, o, precision=a.precision, packing=True)),
                     ('d_unfused_adamw', lambda o: ours(train_ds, a.steps, a.batch, a.lr, o, precision=a.precision, optimizer='adamw_torch')),
                     ('e_masked_attention', lambda o: ours(train_ds, a.steps, a.batch, a.lr, o, precision=a.precision, segment_attention=False)),
                     ('f_peft_lora_forward', lambda o: ours(train_ds, a.steps, a.batch, a.lr, o, precision=a.precision, fused_lora=False))]:
        if a.only and name.split('_')[0] not in a.only.split(','): continue
        out = work / name
        met, adapter = fn(out)
        eng = HFEngine('smollm2-135m-instruct', adapter=str(adapter))
        ev, nll = evaluate(eng, test_ds, GenConfig(max_new_tokens=16)), reference_nll(eng, test_ds)
        met.update(exact_match=ev['accuracy'], em_ci=[ev['ci_low'], ev['ci_high']], stop_rate=ev['stop_rate'],
                   heldout_nll=nll['mean_nll'], heldout_nll_ci=[nll['ci_low'], nll['ci_high']])
        res[name] = met
        print(name, json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in met.items()}), flush=True)
    a_, b_ = res.get('a_trl_defaults_fp32'), res.get('b_slm_nb_defaults')
    ratios = {}
    for k, v in res.items():  # what each ablation's default is worth: (b) over the run without it
        if b_ is not None and k[0] in 'bdef' and k != 'b_slm_nb_defaults': ratios[f'b_over_{k}_tokens_per_s'] = b_['tokens_per_s'] / v['tokens_per_s']
    for k, v in res.items():
        if k == 'a_trl_defaults_fp32' or a_ is None: continue
        ratios[f'{k}_over_a_tokens_per_s'] = v['tokens_per_s'] / a_['tokens_per_s']
        ratios[f'{k}_minus_a_em_points'] = 100 * (v['exact_match'] - a_['exact_match'])
        ratios[f'{k}_heldout_nll_change'] = v['heldout_nll'] / a_['heldout_nll'] - 1  # the bound: within 3%
    res['ratios'] = ratios
    res['env'] = env_info()
    Path(a.out).write_text(json.dumps(res, indent=1))  # the record first: a printing error must not lose the measurements
    limits = ', '.join(f"{k}={v}" for k, v in (res['env'].get('cpu_isa_limits') or {}).items())
    print(f"CPU: {cpu_model()} ({', '.join(cpu_speed_flags())}), {res['env']['torch_threads']} torch threads"
          + (f", restricted by {limits}" if limits else ''))
    print('\n| run | precision | tokens/s | GFLOP/token | matmul peak GFLOP/s | MFU | s/step | peak RSS MiB | final train loss | held-out NLL | held-out EM |\n|---|---|---|---|---|---|---|---|---|---|---|')
    for k, v in [(k, v) for k, v in res.items() if k not in ('ratios', 'env')]:
        print(f"| {k} | {v['precision']} | {v['tokens_per_s']:.0f} | {v['gflops_per_token']:.3f} | {v['peak_gflops']:.0f} | {100 * v['mfu']:.0f}% | {v['s_per_step']:.2f} | {v['peak_rss_mb']:.0f} | {v['final_loss']:.3f} | {v['heldout_nll']:.3f} | "
              f"{v['exact_match']:.2f} [{v['em_ci'][0]:.2f}, {v['em_ci'][1]:.2f}] |")
    print('\nratios:', json.dumps({k: round(v, 2) for k, v in ratios.items()}))


if __name__ == '__main__':
    main()
