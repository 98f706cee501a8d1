"""scripts/docs_results.py, the road from a run directory to the docs: a headline section rebuilt from a new run
keeps the other experiments' sections as they were, and per-step logs stay out of results pages."""
import json, sys
from pathlib import Path

import yaml

root = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(root / 'scripts'))
import docs_results as dr

OLD = """**Main job** (`make demo`: old run):

| | held-out exact-match (95% CI) |
|---|---|
| base | 0.10 [0.00, 0.20] |

**Engines** (old engines run):

| metric | value | target |
|---|---|---|
| (b) / (a) | 16.1 | ≥ 15x |

**Experiment 2** (old math_judge run): kept."""


def fake_lora_run(d: Path, seeds) -> Path:
    d.mkdir(parents=True)
    (d / 'params.yaml').write_text(yaml.safe_dump(dict(model='m', task='arithmetic', max_steps=80, seed=seeds[0])))
    (d / 'env.json').write_text(json.dumps(dict(cpu_count=2, cpu_model='Some CPU', cpu_speed_flags=['avx2'])))
    h = dict(gain_points=61.0, gain_ci_points=[52.5, 69.5], train_tokens_per_s=201.5, train_wall_s=280.9,
             eval_generated_tokens_per_s=72.8, tuned_stop_rate=1.0, seeds=seeds, ci_covers='training seeds and items',
             gain_per_seed={str(s): 60.0 + s for s in seeds})
    ci = dict(accuracy=0.66, ci_low=0.57, ci_high=0.75)
    (d / 'metrics.json').write_text(json.dumps(dict(headline=h, base={**ci, 'accuracy': 0.06}, tuned=ci, train=dict(precision='bf16'))))
    return d


def test_new_main_job_keeps_other_sections(tmp_path):
    new = dr.merge_headline(OLD, {'lora_sft': fake_lora_run(tmp_path / 'r', [0, 1, 2])})
    assert '**Engines** (old engines run)' in new and '| (b) / (a) | 16.1 | ≥ 15x |' in new and 'kept.' in new
    assert 'old run' not in new and '0.10 [0.00, 0.20]' not in new  # the main job's section is the new run's
    assert 'Over 3 training seeds (0, 1, 2; the rows above are seed 0)' in new and 'per seed 0: 60, 1: 61, 2: 62' in new
    assert new.index('**Main job**') < new.index('**Engines**') < new.index('**Experiment 2**')
    one = dr.merge_headline(OLD, {'lora_sft': fake_lora_run(tmp_path / 'one', [0])})
    assert '`make demo`' in one and 'Gain 61.0 points (paired 95% CI [52.5, 69.5])' in one and 'training seeds' not in one


def test_step_logs_left_out_of_pages():
    assert not dr.keep_line("{'loss': '0.3527', 'grad_norm': '1.513'}")
    assert not dr.keep_line('[train steps] 53/80 (66%) loss 0.3527 elapsed 3m06s ETA 1m35s')
    assert dr.keep_line('[train steps] 80/80 (100%) loss 0.2916 elapsed 4m40s')
    assert not dr.keep_line('[train steps] 304 loss 0.2963, 623 tok/s, MFU 38% elapsed 6m08s ETA 13m52s')  # a wall-clock budget's open count
    assert dr.keep_line('[train steps] 438 loss 0.3100, 620 tok/s, MFU 38% elapsed 20m01s')
    assert dr.keep_line("{'train_runtime': '280.5', 'train_samples_per_second': '4.563'}")
