"""The main job and the failure paths of `slm-nb run`, through papermill, checking the run directory's contents."""
import json, os, re, subprocess, sys
from pathlib import Path

import pytest, yaml

BIN = Path(sys.executable).parent
DUMMY_KEY = 'dummy-secret-key-do-not-write-7f3a'


def slm_nb(*args, root, timeout=1200, unset=()):
    env = {k: v for k, v in {**os.environ, 'GEMINI_API_KEY': DUMMY_KEY, 'OPENAI_API_KEY': DUMMY_KEY}.items() if k not in unset}
    return subprocess.run([str(BIN / 'slm-nb'), *args, '--root', str(root), '--no-progress'] if args[0] == 'run' else
                          [str(BIN / 'slm-nb'), *args], capture_output=True, text=True, env=env, timeout=timeout)


def only_run(root):
    runs = [d for d in Path(root).iterdir() if d.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def assert_no_secret(run_dir):
    for f in Path(run_dir).rglob('*'):
        if f.is_file(): assert DUMMY_KEY.encode() not in f.read_bytes(), f


def test_lora_sft_small(tmp_path, check_ok):
    r = slm_nb('run', 'lora_sft', '-p', 'n_train', '160', '-p', 'n_test', '24', '-p', 'max_steps', '30',
               '-p', 'max_new_tokens', '8', '-p', 'eval_batch_size', '24', '-p', 'batch_size', '8', '-p', 'hellaswag_items', '8', root=tmp_path)
    check_ok(r)
    d = only_run(tmp_path)
    assert 'run directory:' in r.stdout and 'tuned_exact_match' in r.stdout  # headline printed
    for f in ['params.yaml', 'env.json', 'metrics.json', 'status.json', 'report.md', 'predictions.jsonl', 'lora_sft.ipynb',
              'plots/loss.png', 'plots/base_vs_tuned.png', 'adapter/adapter_model.safetensors', 'adapter/tokenizer.json',
              'train_config.yaml']:
        assert (d / f).exists(), f
    assert json.loads((d / 'status.json').read_text())['status'] == 'succeeded'
    params = yaml.safe_load((d / 'params.yaml').read_text())
    assert params['max_steps'] == 30 and params['experiment'] == 'lora_sft'
    m = json.loads((d / 'metrics.json').read_text())
    for k in ('base_exact_match', 'tuned_exact_match', 'gain_points', 'train_tokens_per_s', 'eval_generated_tokens_per_s',
              'base_ref_nll', 'tuned_ref_nll', 'nll_change', 'nll_change_ci', 'train_mfu', 'train_matmul_peak_gflops'):
        assert k in m['headline'], k
    assert m['headline']['train_mfu'] > 0 and m['train']['matmul_peak_precision'] == m['train']['precision']  # utilization, against a peak at the run's precision
    ep = m['headline']['eval_precision']  # what the evaluation engine read prompts and decoded in (auto: per phase)
    assert ep['prefill'] in ('fp32', 'bf16') and set(ep['decode']) == {'1', '4', '16'} and m['tuned']['precision'] == ep, ep
    # the tuned model finds the held-out references more likely than its base (a large effect even after 12 steps)
    assert m['headline']['nll_change_ci'][1] < 0, m['headline']
    # and it answers more held-out questions exactly than its base: the paired 95% CI of the gain excludes 0
    # (measured on a 2-core AVX512-BF16 CPU: 0.00 -> 0.25, CI [8, 42] points after 30 steps; 12 steps gave 0.00 -> 0.04)
    assert m['headline']['gain_ci_points'][0] > 0, m['headline']
    assert 0 <= m['base']['accuracy'] <= 1 and 0 <= m['tuned']['accuracy'] <= 1
    assert m['base']['n'] == 24 and m['tuned']['ci_low'] <= m['tuned']['accuracy'] <= m['tuned']['ci_high']
    assert m['train']['global_step'] == 30 and m['train']['final_loss'] < m['train']['loss_history'][0][1]
    assert len((d / 'predictions.jsonl').read_text().splitlines()) == 24
    ev = m['train']['eval_during_training']  # on by default: every 20 steps and at the last, on a slice apart from train and test
    assert [s for s, _ in ev['points']] == [20, 30] and ev['n_items'] > 0 and ev['metric'] == 'exact_match', ev
    assert m['headline']['seeds'] == [0] and m['headline']['ci_covers'] == 'items only (one training seed)' and isinstance(m['train']['determinism']['deterministic'], bool)
    fg = m['forgetting']  # the HellaSwag forgetting check ran on 8 items, base and tuned, with a paired CI
    assert fg['n_items'] == 8 and 0 <= fg['base']['acc_norm'] <= 1 and fg['change']['low'] <= fg['change']['estimate'] <= fg['change']['high'], fg
    nb = json.loads((d / 'lora_sft.ipynb').read_text())
    assert sum(len(c.get('outputs', [])) for c in nb['cells']) > 5  # executed, with outputs
    env = json.loads((d / 'env.json').read_text())
    assert 'transformers' in env['packages'] and env['written_by'] == 'kernel' and env['torch_threads'] >= 1, env
    assert_no_secret(d)


def test_unknown_parameter_fails_with_record(tmp_path):
    r = slm_nb('run', 'lora_sft', '-p', 'max_step', '3', root=tmp_path)
    assert r.returncode != 0
    assert 'unknown parameter `max_step`' in r.stderr and 'Did you mean `max_steps`' in r.stderr
    st = json.loads((only_run(tmp_path) / 'status.json').read_text())
    assert st['status'] == 'failed' and st['stage'] == 'parameters' and 'max_step' in st['message']


def test_missing_model_fails_with_record(tmp_path):
    r = slm_nb('run', 'lora_sft', '-p', 'model', './no-such-model', '-p', 'n_train', '8', '-p', 'n_test', '4', root=tmp_path)
    assert r.returncode != 0
    st = json.loads((only_run(tmp_path) / 'status.json').read_text())
    assert st['status'] == 'failed' and st['stage'] == 'execution' and st['ename'] == 'ModelNotFoundError'
    assert 'no-such-model' in st['evalue'] and st['cell'] is not None
    assert 'ModelNotFoundError' in r.stderr


def test_bad_data_file_fails_with_record(tmp_path):
    bad = tmp_path / 'bad.jsonl'
    bad.write_text('{"instruction": "Say hi", "output": "hi"}\n{"instruction": "broken", \n')
    root = tmp_path / 'runs'
    r = slm_nb('run', 'lora_sft', '-p', 'data_path', str(bad), '-p', 'data_format', 'alpaca_jsonl', root=root)
    assert r.returncode != 0
    st = json.loads((only_run(root) / 'status.json').read_text())
    assert st['ename'] == 'DataError' and 'line 2' in st['evalue'], st
    assert_no_secret(only_run(root))


def test_list_shows_parameters(check_ok):
    r = slm_nb('list', root=None)
    check_ok(r)
    assert 'lora_sft' in r.stdout and 'max_steps = 80  # Optimizer steps' in r.stdout


def test_lora_sft_on_a_users_files(tmp_path, check_ok):
    "A user's own train and test files: their content hashes are recorded, and test questions seen in training are removed."
    import csv, hashlib
    rows = [(f"What is {a} + {a + 1}?", str(2 * a + 1)) for a in range(40)]
    train_f, test_f = tmp_path / 'train.csv', tmp_path / 'test.csv'
    for f, rs in ((train_f, rows), (test_f, rows[:2] + [(f"What is {a} + {a + 2}?", str(2 * a + 2)) for a in range(4)])):
        with open(f, 'w', newline='') as fh: csv.writer(fh).writerows([('q', 'a'), *rs])
    r = slm_nb('run', 'lora_sft', '-p', 'data_path', str(train_f), '-p', 'test_path', str(test_f), '-p', 'column_map',
               '{question: q, answer: a}', '-p', 'max_steps', '2', '-p', 'batch_size', '4', '-p', 'max_new_tokens', '6', '-p', 'hellaswag_items', '0',
               root=tmp_path / 'runs')
    check_ok(r)
    d = only_run(tmp_path / 'runs')
    m = json.loads((d / 'metrics.json').read_text())
    assert m['data']['files_sha256'] == {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in (train_f, test_f)}, m['data']
    assert m['data']['overlap_removed'] == 2 and m['base']['n'] == 4, (m['data'], m['base']['n'])
    assert 'removed 2 held-out record(s)' in r.stdout


def test_lora_sft_judged_by_the_standin(tmp_path, check_ok):
    "lora_sft with a judge configured: the judge step runs to the end and the report says the verdicts are the stand-in's."
    r = slm_nb('run', 'lora_sft', '-p', 'n_train', '32', '-p', 'n_test', '4', '-p', 'max_steps', '2', '-p', 'batch_size', '4',
               '-p', 'max_new_tokens', '6', '-p', 'judge_backend', 'standin', '-p', 'n_judged', '3', '-p', 'hellaswag_items', '0', root=tmp_path)
    check_ok(r)
    d = only_run(tmp_path)
    m = json.loads((d / 'metrics.json').read_text())
    j = m['judge']
    assert j['judge']['standin'] is True and j['prompt_version'] == 'judge-v3', j['judge']
    assert set(j['single']) == {'base', 'tuned'} and all(s['n'] == 3 and s['n_ok'] == 3 for s in j['single'].values())
    assert j['pairwise']['n'] == 3 and j['pairwise']['swapped'] and set(j['exact']) == {'base', 'tuned'}
    judg = [json.loads(l) for l in (d / 'judgments.jsonl').read_text().splitlines()]
    assert len(judg) == 3 + 3 + 3 and {x.get('kind') for x in judg if x['mode'] == 'single'} == {'answer'}
    assert 'the offline stand-in: a pipeline check, not a measurement' in (d / 'report.md').read_text()
    assert_no_secret(d)


def test_lora_sft_on_open_ended_alpaca(tmp_path, check_ok):
    "Free-text Alpaca data (no exact answers): exact match is n/a, the reference likelihood is the measurement."
    recs = [dict(instruction=f"Describe the number {n} in one sentence.", input='',
                 output=f"{n} is an {'even' if n % 2 == 0 else 'odd'} number that comes after {n - 1}.") for n in range(2, 62)]
    f = tmp_path / 'alpaca.json'
    f.write_text(json.dumps(recs))
    r = slm_nb('run', 'lora_sft', '-p', 'data_path', str(f), '-p', 'n_test', '6', '-p', 'max_steps', '6', '-p', 'batch_size', '8',
               '-p', 'max_new_tokens', '24', '-p', 'judge_backend', 'standin', '-p', 'hellaswag_items', '0', root=tmp_path / 'runs')
    check_ok(r)
    d = only_run(tmp_path / 'runs')
    m = json.loads((d / 'metrics.json').read_text())
    h = m['headline']
    assert h['base_exact_match'] is None and h['gain_points'] is None and h['exact_match_note'] == 'n/a (0 of 6 have exact answers)', h
    assert h['nll_change_ci'][1] < 0, h  # learned the sentences' shape: the references became more likely
    assert m['judge']['exact'] == {} and m['judge']['single']['tuned']['n_ok'] == 6
    judg = [json.loads(l) for l in (d / 'judgments.jsonl').read_text().splitlines()]
    assert {x['kind'] for x in judg if x['mode'] == 'single'} == {'instruction'}
    report = (d / 'report.md').read_text()
    assert 'Exact match: n/a (0 of 6 have exact answers)' in report and 'Reference NLL change' in report


@pytest.mark.parametrize('case', ['empty_benchmark', 'no_gemini_key', 'cap_without_price'])
def test_math_judge_fails_before_training(tmp_path, case):
    "What can fail without a model fails first: an empty benchmark, a missing Gemini key, a cost cap without a price."
    small = ['-p', 'max_steps', '1', '-p', 'n_problems', '2', '-p', 'max_new_tokens', '4', '-p', 'n_control', '0']
    args, unset, want = {
        'empty_benchmark': (['-p', 'test_path', 'demi:pretraining'], (), ('DataError', r"the benchmark is empty: all 2 problem\(s\) of test_path='demi:pretraining' also appear in train_path='demi:pretraining'")),
        'no_gemini_key': (['-p', 'judge_backend', 'gemini'], ('GEMINI_API_KEY', 'GOOGLE_API_KEY'), ('ConfigError', 'GEMINI_API_KEY')),
        'cap_without_price': (['-p', 'judge_backend', 'openai', '-p', 'judge_base_url', 'http://127.0.0.1:9/v1', '-p', 'judge_model', 'my-model',
                               '-p', 'judge_max_cost_usd', '1'], (), ('ConfigError', "max_cost_usd=1(\\.0)? cannot be enforced without a price for 'my-model'")),
    }[case]
    r = slm_nb('run', 'math_judge', *small, *args, root=tmp_path, unset=unset, timeout=600)
    assert r.returncode != 0, r.stdout[-2000:]
    d = only_run(tmp_path)
    st = json.loads((d / 'status.json').read_text())
    assert st['ename'] == want[0] and re.search(want[1], st['evalue']), st
    assert not (d / 'adapter').exists() and not (d / 'train_config.yaml').exists(), sorted(p.name for p in d.iterdir())  # nothing trained
