#!/usr/bin/env python
"""RL training benchmark: DPO and GRPO steps with slm_nb's defaults against TRL's, side by side in one run.

Each arm trains the embedded SmolLM2-135M-Instruct with a fresh LoRA (r=16, all linear layers):

- "now" is `slm_nb.rl` at its defaults: the fused LoRA forward (`slm_nb.trainers.fuse_lora`) and no gradient
  checkpointing;
- "trl" is the same call with `fused_lora=False, gradient_checkpointing=True`: PEFT's own LoRA forward and TRL's
  default of recomputing activations in the backward pass (what `slm_nb.rl` ran before it set them);
- with `--ablation`, also "gc": the fused forward with checkpointing on, to split the gain between the two.

DPO: `--pairs` pairs built from the arithmetic task (the right answer chosen, a wrong one rejected), batch 8, beta 0.1.
GRPO: the arithmetic task's prompts, 8 completions a step in groups of 4, 24 tokens at most; its seconds are split
into sampling (transformers' generate on the policy) and training (the rest of the step).

DPO is measured step by step in one process: one trainer, the arms switched between steps on the same batch (the
checkpointing turned on and off on the model, the fused forward put on and taken off its layers), `--dpo-steps`
rounds with the order reversed every other round; the ratio is the median of the per-round ratios. GRPO is measured
in whole runs (its steps sample first), the arms alternating over `--rounds` rounds; its ratios are of the medians
over rounds, and every round is printed: on these machines whole runs drift by 15% or more between minutes, so the
DPO figure is the firmer one. The CPU model, its speed-deciding flags, any instruction-set limits, the thread count
and the precision are printed and saved.

    .venv/bin/python scripts/bench_rl.py [--precision auto|fp32|bf16] [--dpo-steps 24] [--rounds 3] [--grpo-steps 8] [--ablation] [--out bench_rl.json]
"""
import argparse, json, statistics, tempfile, time, warnings
from pathlib import Path
warnings.filterwarnings('ignore')

import torch
from datasets import Dataset

from peft.tuners.lora import Linear as LoraLinear
from trl import DPOTrainer

from slm_nb.core import cpu_model, cpu_speed_flags, env_info, seed_everything
from slm_nb.models import load_tokenizer, resolve_model
from slm_nb.precision import phase_precision
from slm_nb.rl import RLConfig, dpo_args, grpo, load_policy
from slm_nb.tasks import make_task
from slm_nb.trainers import fuse_lora

ARMS = {'now': dict(), 'trl': dict(fused_lora=False, gradient_checkpointing=True), 'gc': dict(gradient_checkpointing=True)}


def arithmetic_pairs(ds) -> Dataset:
    "Preference pairs from task records: the right answer chosen, the answer plus 7 rejected."
    return Dataset.from_list([dict(prompt=r['prompt'][-1]['content'], chosen=f"The answer is {r['answer']}.",
                                   rejected=f"The answer is {int(float(r['answer'])) + 7}.") for r in ds])


def dpo_steps(pairs, arms, rounds, precision, work) -> dict:
    "Seconds per DPO step of each arm, switched between steps of one trainer on the same batches."
    cfg = RLConfig(method='dpo', beta=0.1, batch_size=8, max_steps=10 * rounds, precision=precision, seed=0)
    seed_everything(0)
    path = resolve_model(cfg.model)
    model, peft_cfg = load_policy(cfg, path)
    tr = DPOTrainer(model=model, args=dpo_args(cfg, work/'dpo'), train_dataset=pairs, processing_class=load_tokenizer(path), peft_config=peft_cfg)
    tr.create_optimizer_and_scheduler(num_training_steps=cfg.max_steps); tr.current_gradient_accumulation_steps = 1
    it = iter(tr.get_train_dataloader()); batches = [next(it) for _ in range(6)]
    inner, layers = tr.model.get_base_model(), [m for m in tr.model.modules() if type(m) is LoraLinear]
    def use(arm):
        if ARMS[arm].get('gradient_checkpointing'): inner.gradient_checkpointing_enable(gradient_checkpointing_kwargs={'use_reentrant': False})
        else: inner.gradient_checkpointing_disable()
        for m in layers: vars(m).pop('forward', None)  # PEFT's forward back
        if ARMS[arm].get('fused_lora', True): fuse_lora(tr.model)
    def step(b):
        t = time.perf_counter()
        tr.training_step(tr.model, b); tr.optimizer.step(); tr.optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - t
    for arm in arms: use(arm); step(batches[0]); step(batches[1])  # warm-up
    times = {arm: [] for arm in arms}
    for r in range(rounds):
        for arm in (arms if r % 2 == 0 else arms[::-1]): use(arm); times[arm].append(step(batches[r % len(batches)]))
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--precision', default='auto'); ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--dpo-steps', type=int, default=24); ap.add_argument('--grpo-steps', type=int, default=8)
    ap.add_argument('--pairs', type=int, default=96); ap.add_argument('--ablation', action='store_true')
    ap.add_argument('--out', default='bench_rl.json')
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix='slm_nb_bench_rl_'))
    ds = make_task('arithmetic', max(200, a.pairs), seed=0)
    pairs = arithmetic_pairs(ds.select(range(a.pairs)))
    arms = [k for k in ARMS if k != 'gc' or a.ablation]
    dpo_t = dpo_steps(pairs, arms, a.dpo_steps, a.precision, work)
    for arm in arms: print('dpo', arm, 's/step', [round(x, 3) for x in dpo_t[arm]], flush=True)
    runs = {('grpo', k): [] for k in arms}
    for r in range(a.rounds):
        for arm in (arms if r % 2 == 0 else arms[::-1]):
            kw = dict(precision=a.precision, seed=0, **ARMS[arm])
            g = grpo(RLConfig(max_steps=a.grpo_steps, batch_size=8, num_generations=4, max_completion_length=24, **kw), ds,
                     run_dir=work/f'grpo_{arm}_{r}')
            runs[('grpo', arm)].append(dict(s_per_step=g['s_per_step'], training_s_per_step=g['training_s'] / g['steps'],
                                            sampled_tokens_per_s=g['sampled_tokens_per_s'], peak_rss_mb=g['peak_rss_mb'],
                                            fused_lora_layers=g['fused_lora_layers']))
            print('grpo round', r, arm, json.dumps(runs[('grpo', arm)][-1]), flush=True)
    med = lambda m, k, key: statistics.median(x[key] for x in runs[(m, k)])
    ratios = {}
    for k in arms:
        if k == 'now': continue
        ratios[f'dpo_step_{k}_over_now'] = statistics.median(x / y for x, y in zip(dpo_t[k], dpo_t['now']))
        ratios[f'grpo_step_{k}_over_now'] = med('grpo', k, 's_per_step') / med('grpo', 'now', 's_per_step')
        ratios[f'grpo_training_{k}_over_now'] = med('grpo', k, 'training_s_per_step') / med('grpo', 'now', 'training_s_per_step')
        ratios[f'grpo_sampling_now_over_{k}'] = med('grpo', 'now', 'sampled_tokens_per_s') / med('grpo', k, 'sampled_tokens_per_s')
    info = env_info()
    res = dict(env=info, args=vars(a), precision=phase_precision(a.precision, 'train'),
               dpo_step_s=dpo_t, grpo_runs={k: v for (m, k), v in runs.items()}, ratios=ratios)
    Path(a.out).write_text(json.dumps(res, indent=1))
    limits = ', '.join(f"{k}={v}" for k, v in (info.get('cpu_isa_limits') or {}).items())
    print(f"CPU: {cpu_model()} ({', '.join(cpu_speed_flags())}), {torch.get_num_threads()} torch threads, precision {res['precision']}"
          + (f", restricted by {limits}" if limits else ''))
    print('\n| arm | DPO median s/step | GRPO median s/step | GRPO training s/step | GRPO sampled tokens/s | GRPO peak RSS MiB |\n|---|---|---|---|---|---|')
    for k in arms:
        print(f"| {k} | {statistics.median(dpo_t[k]):.2f} | {med('grpo', k, 's_per_step'):.2f} | {med('grpo', k, 'training_s_per_step'):.2f} | "
              f"{med('grpo', k, 'sampled_tokens_per_s'):.0f} | {med('grpo', k, 'peak_rss_mb'):.0f} |")
    print('\nratios (over rounds\' medians; > 1 means the defaults are faster):', json.dumps({k: round(v, 2) for k, v in ratios.items()}))


if __name__ == '__main__':
    main()
