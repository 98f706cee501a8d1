#!/usr/bin/env python
"""The LM head and its loss in row chunks (`slm_nb.trainers.head_cross_entropy`) against the stock loss, side by side in one run.

Both arms are the SFT trainer at its defaults (LoRA r=16 on all linear layers of the embedded SmolLM2-135M-Instruct,
padding-free batches, logits only where the loss needs them); "fused" runs the head inside the loss a chunk of rows at
a time (`TrainConfig.fused_head`, the default), "stock" lets the model compute the logits and takes
`F.cross_entropy` of them. Two workloads:

- long: Experiment 2's rows (the DEMI-MathAnalysis training proofs with the experiment's system prompt, batch 4,
  `max_length` 1024): most of each row is supervised, so the logits are a few hundred MB a step;
- short: the main job's rows (the arithmetic task, batch 16): a few supervised tokens a row, so a step's logits are
  smaller than one chunk and both arms take the stock loss (the trainer's rule: nothing to save); it is kept as the
  check that the rule holds and costs nothing there.

One trainer per workload and precision; the arms switch between its steps on the same batches, the order reversed
every other round, `--rounds` rounds; the ratio is the median of the per-round ratios (these machines drift by 15% or
more between minutes, which whole runs cannot separate from a lever). The first batch's loss is compared between the
arms before any optimizer step. With `--memory`, each arm of the long workload also trains `--memory-steps` steps in
a process of its own, whose peak RSS during those steps is reported (Linux: the high-water mark is reset after
the trainer is built). The CPU model, its speed-deciding flags, any instruction-set
limits, the thread count and the precision are printed and saved.

    .venv/bin/python scripts/bench_loss.py [--precisions auto,fp32] [--workloads long,short] [--rounds 8] [--memory] [--out bench_loss.json]
"""
import argparse, json, statistics, subprocess, sys, tempfile, time, warnings
from pathlib import Path
warnings.filterwarnings('ignore')

from slm_nb.core import cpu_model, cpu_speed_flags, env_info, seed_everything
from slm_nb.data import load_records
from slm_nb.models import HEAD_CHUNK_BYTES, load_tokenizer, resolve_model
from slm_nb.precision import phase_precision
from slm_nb.tasks import task_splits
from slm_nb.trainers import TrainConfig, _make_trainer, prepare_examples

SYSTEM = 'Prove the statement, or solve the problem, rigorously and step by step.'  # Experiment 2's system message
WORKLOADS = dict(long=dict(batch_size=4, max_length=1024, learning_rate=5e-4), short=dict(batch_size=16, max_length=256, learning_rate=1e-3))


def records(workload):
    if workload == 'long': return load_records('demi:pretraining', system=SYSTEM)
    return task_splits('arithmetic', 2000, 10, seed=0)[0]


def trainer_for(workload, precision, work, fused_head=True, steps=100):
    "The SFT trainer of `workload` as `slm_nb.trainers.train` builds it, its optimizer made, one batch per step."
    cfg = TrainConfig(max_steps=steps, precision=precision, fused_head=fused_head, seed=0, **WORKLOADS[workload])
    seed_everything(0)
    path = resolve_model(cfg.model); tok = load_tokenizer(path)
    ex, _ = prepare_examples(records(workload), tok, cfg.max_length)
    tr, _ = _make_trainer(cfg, tok, path, ex, None, Path(work)/'ckpt', [])
    tr.create_optimizer_and_scheduler(num_training_steps=steps); tr.current_gradient_accumulation_steps = 1
    tr.model.train()
    return tr


def step(tr, b):
    t = time.perf_counter()
    loss = tr.training_step(tr.model, b); tr.optimizer.step(); tr.optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - t, float(loss)


def side_by_side(workload, precision, rounds, work) -> dict:
    tr = trainer_for(workload, precision, work)
    it = iter(tr.get_train_dataloader()); batches = [next(it) for _ in range(max(2, min(rounds, 8)))]
    first = {}
    for arm in ('fused', 'stock'):  # the same weights: no optimizer step between them
        tr.fused_head = arm == 'fused'
        first[arm] = float(tr.training_step(tr.model, batches[0])); tr.optimizer.zero_grad(set_to_none=True)
    for arm in ('fused', 'stock'): tr.fused_head = arm == 'fused'; step(tr, batches[1])  # warm-up
    times = {'fused': [], 'stock': []}
    for r in range(rounds):
        for arm in (('fused', 'stock') if r % 2 == 0 else ('stock', 'fused')):
            tr.fused_head = arm == 'fused'; times[arm].append(step(tr, batches[r % len(batches)])[0])
    rows = [len(b['input_ids'].reshape(-1)) for b in batches]
    vocab = tr.model.get_output_embeddings().out_features
    chunked = sum(int((b['labels'][:, 1:] != -100).any(0).sum()) * b['labels'].size(0) * vocab * 4 > HEAD_CHUNK_BYTES for b in batches)
    return dict(times=times, ratio=statistics.median(s / f for f, s in zip(times['fused'], times['stock'])),
                first_loss=first, first_loss_rel_diff=abs(first['fused'] - first['stock']) / abs(first['stock']),
                tokens_per_batch=statistics.mean(rows), chunked_batches=f'{chunked}/{len(batches)}', precision=phase_precision(precision, 'train'))


def child(workload, precision, arm, steps):
    "One arm alone in this process: its peak RSS in `steps` steps (the high-water mark reset once the trainer is built)."
    with tempfile.TemporaryDirectory() as d:
        tr = trainer_for(workload, precision, d, fused_head=arm == 'fused')
        it = iter(tr.get_train_dataloader())
        Path('/proc/self/clear_refs').write_text('5')  # Linux: VmHWM back to the current RSS
        before = rss_mb('VmRSS')
        secs = [step(tr, next(it))[0] for _ in range(steps)]
    print(json.dumps(dict(peak_rss_mb=rss_mb('VmHWM'), rss_before_steps_mb=before, s_per_step=secs)))


def rss_mb(field):
    "A field of /proc/self/status (VmRSS, VmHWM) in MiB."
    line = next(l for l in Path('/proc/self/status').read_text().splitlines() if l.startswith(field + ':'))
    return int(line.split()[1]) / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--precisions', default='auto,fp32'); ap.add_argument('--workloads', default='long,short')
    ap.add_argument('--rounds', type=int, default=8); ap.add_argument('--memory', action='store_true')
    ap.add_argument('--memory-steps', type=int, default=3); ap.add_argument('--out', default='bench_loss.json')
    ap.add_argument('--child', default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child: return child(*a.child.split(':'), a.memory_steps)
    res = dict(env=env_info(), args=vars(a), runs={})
    with tempfile.TemporaryDirectory() as work:
        for prec in a.precisions.split(','):
            for wl in a.workloads.split(','):
                r = side_by_side(wl, prec, a.rounds, work)
                res['runs'][f'{wl}/{prec}'] = r
                print(wl, prec, 's/step fused', [round(x, 2) for x in r['times']['fused']], 'stock', [round(x, 2) for x in r['times']['stock']], flush=True)
                if a.memory and wl == 'long':
                    for arm in ('fused', 'stock'):
                        out = subprocess.run([sys.executable, __file__, '--child', f'{wl}:{prec}:{arm}', '--memory-steps', str(a.memory_steps)],
                                             capture_output=True, text=True, check=True).stdout
                        r[f'{arm}_alone'] = json.loads(out.strip().splitlines()[-1])
    Path(a.out).write_text(json.dumps(res, indent=1))
    limits = ', '.join(f"{k}={v}" for k, v in (res['env'].get('cpu_isa_limits') or {}).items())
    print(f"CPU: {cpu_model()} ({', '.join(cpu_speed_flags())}), {res['env']['torch_threads']} torch threads" + (f", restricted by {limits}" if limits else ''))
    print('\n| workload | precision | tokens/batch | batches on the chunked path | fused s/step (median) | stock s/step (median) | stock / fused (median of rounds) | first-batch loss rel. diff | peak RSS MiB fused / stock (alone) |')
    print('|---|---|---|---|---|---|---|---|---|')
    for k, r in res['runs'].items():
        wl, _ = k.split('/')
        mem = (f"{r['fused_alone']['peak_rss_mb']:.0f} / {r['stock_alone']['peak_rss_mb']:.0f} (from {r['stock_alone']['rss_before_steps_mb']:.0f})" if 'fused_alone' in r else 'n/a')
        print(f"| {wl} | {r['precision']} | {r['tokens_per_batch']:.0f} | {r['chunked_batches']} | {statistics.median(r['times']['fused']):.2f} | {statistics.median(r['times']['stock']):.2f} | "
              f"**{r['ratio']:.2f}x** | {r['first_loss_rel_diff']:.1e} | {mem} |")


if __name__ == '__main__':
    main()
