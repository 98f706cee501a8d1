#!/usr/bin/env python
"""GPU check: a few training steps and a batch of generations on one CUDA GPU, offline, with the numbers printed.

Runs the Unsloth trainer when Unsloth imports, else the TRL trainer in bf16 (the same TrainConfig), on the embedded
SmolLM2-135M-Instruct and the arithmetic task; then evaluates the adapter with the hf engine. Prints trained
tokens/s, s/step, peak GPU memory (allocated and reserved), held-out exact-match and stop rate, as JSON.
It also checks that QLoRA runs where bitsandbytes is installed, and says so where it is not.

    scripts/gpu_check.sh [--steps 40]
"""
import argparse, importlib.util, json, sys, tempfile, time, traceback


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--steps', type=int, default=40); ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--n-test', type=int, default=200); ap.add_argument('--out', default=None)
    a = ap.parse_args()
    import torch
    if not torch.cuda.is_available(): sys.exit('gpu_check: no CUDA GPU here; on a CPU run `make test` instead.')
    from slm_nb.core import env_info
    from slm_nb.tasks import task_splits
    from slm_nb.engines import HFEngine, GenConfig
    from slm_nb.evaluation import evaluate
    from slm_nb.trainers import TrainConfig, train
    report = dict(gpu=torch.cuda.get_device_name(0), torch=torch.__version__, env=env_info())
    trainer = 'unsloth' if importlib.util.find_spec('unsloth') else 'trl'
    report['trainer'] = trainer if trainer == 'unsloth' else 'trl (Unsloth not installed here)'
    train_ds, test_ds = task_splits('arithmetic', 4000, a.n_test, seed=0)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        cfg = TrainConfig(trainer=trainer, method='lora', precision='bf16', max_steps=a.steps, batch_size=a.batch,
                          learning_rate=1e-3, warmup_ratio=0.05, logging_steps=5)
        met = train(cfg, train_ds, run_dir=d)
        report['lora'] = {k: met[k] for k in ('tokens_per_s', 's_per_step', 'train_wall_s', 'cuda_peak_allocated_mb',
                                               'peak_rss_mb', 'final_loss', 'precision', 'device')}
        report['lora']['loss_first'] = met['loss_history'][0][1]
        eng = HFEngine('smollm2-135m-instruct', adapter=f'{d}/adapter', precision='bf16')
        ev = evaluate(eng, test_ds, GenConfig(max_new_tokens=16, batch_size=64))
        report['eval'] = dict(exact_match=ev['accuracy'], ci=[ev['ci_low'], ev['ci_high']], stop_rate=ev['stop_rate'],
                              generated_tokens_per_s=ev['speed']['tokens_per_s'])
        report['wall_s'] = time.perf_counter() - t0
    if importlib.util.find_spec('bitsandbytes'):
        try:
            with tempfile.TemporaryDirectory() as d:
                met = train(TrainConfig(method='qlora', precision='bf16', max_steps=5, batch_size=a.batch), train_ds, run_dir=d)
                report['qlora'] = {k: met[k] for k in ('tokens_per_s', 'cuda_peak_allocated_mb', 'final_loss')}
        except Exception as e: report['qlora'] = f'failed: {type(e).__name__}: {e}'
    else: report['qlora'] = 'not run: bitsandbytes is not installed here'
    out = json.dumps(report, indent=1, default=str)
    print(out)
    if a.out: open(a.out, 'w').write(out)


if __name__ == '__main__':
    main()
