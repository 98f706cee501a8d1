"""`slm-nb run math_judge` (Experiment 2) end to end on its real data with the offline stand-in judge, on a user's own
files of the same shape, as a dry run of the full-scale recipe, then `slm-nb run compare_runs` on its run directory;
checks what each run directory holds and that no key leaks."""
import csv, json, math, os, subprocess, sys
from pathlib import Path

import pytest, yaml

BIN = Path(sys.executable).parent
DUMMY_KEY = 'dummy-gemini-key-must-not-be-written-5c1e'
SMALL = ['-p', 'n_train', '6', '-p', 'n_problems', '3', '-p', 'max_steps', '2', '-p', 'max_new_tokens', '32',
         '-p', 'max_length', '256', '-p', 'n_control', '2']


def slm_nb(*args, root, timeout=900):
    env = {**os.environ, 'GEMINI_API_KEY': DUMMY_KEY, 'OPENAI_API_KEY': DUMMY_KEY}
    env.pop('SLM_NB_RUNS', None)
    return subprocess.run([str(BIN / 'slm-nb'), *args, '--root', str(root), '--no-progress'],
                          capture_output=True, text=True, env=env, timeout=timeout)


def runs_of(root, name):
    return sorted(d for d in Path(root).iterdir() if d.is_dir() and name in d.name)


def read_jsonl(p):
    return [json.loads(l) for l in Path(p).read_text().splitlines()]


def assert_no_key(run_dir, *texts):
    for f in Path(run_dir).rglob('*'):
        if f.is_file(): assert DUMMY_KEY.encode() not in f.read_bytes(), f
    for t in texts: assert DUMMY_KEY not in t


@pytest.fixture(scope='module')
def judged(tmp_path_factory, check_ok):
    "A small Experiment 2 on the shipped DEMI split: 6 training proofs, 2 steps, 3 benchmark problems, the stand-in judge."
    root = tmp_path_factory.mktemp('runs')
    r = slm_nb('run', 'math_judge', *SMALL, root=root)
    check_ok(r)
    (d,) = runs_of(root, 'math_judge')
    return root, d, r


def test_math_judge_run_directory(judged):
    root, d, r = judged
    assert 'base_ref_nll' in r.stdout and 'win_rate_tuned' in r.stdout  # the headline is printed
    for f in ('params.yaml', 'env.json', 'status.json', 'metrics.json', 'math_judge.ipynb', 'generations.jsonl', 'judgments.jsonl',
              'report.md', 'report_table.csv', 'plots/judge_report.png', 'plots/reference_nll.png', 'plots/loss.png',
              'adapter/adapter_model.safetensors'):
        assert (d / f).is_file() and (d / f).stat().st_size > 0, f
    assert json.loads((d / 'status.json').read_text())['status'] == 'succeeded'
    params = yaml.safe_load((d / 'params.yaml').read_text())
    assert params['experiment'] == 'math_judge' and params['train_path'] == 'demi:pretraining' and params['n_problems'] == 3

    m = json.loads((d / 'metrics.json').read_text())
    h = m['headline']
    assert h['n_problems'] == 3 and h['exact_match'] == 'n/a (0 of 3 have exact answers)', h
    assert h['judge_is_standin'] is True and h['judge'].startswith('gemini:stand-in-judge@http://127.0.0.1:')
    assert math.isclose(h['nll_change'], h['tuned_ref_nll'] - h['base_ref_nll'], abs_tol=2e-3)
    assert h['nll_change_ci'][0] <= h['nll_change'] <= h['nll_change_ci'][1]
    for k in ('judge_score_base', 'judge_score_tuned'): assert 1 <= h[k] <= 10, (k, h[k])
    assert 0 <= h['win_rate_tuned'] <= 1 and h['judge_failures'] == 0 and h['position_consistency'] == 1.0
    assert h['train_proofs_cut'] == 6  # every DEMI proof is longer than 256 tokens
    # The stand-in grades by word overlap with the reference: it sees a missing case and a truncation, never a one-symbol
    # flip. So its control is exactly 2/3 on any proofs; a judge path that stops corrupting or grading moves this.
    assert math.isclose(h['control_sanity_rate'], 2 / 3, abs_tol=5e-4), h['control_sanity_rate']  # the headline rounds to 3 places
    assert {k: v['estimate'] for k, v in m['control']['by_how'].items()} == {'wrong_step': 0.0, 'missing_case': 1.0, 'truncated': 1.0}
    rep = m['report']
    assert rep['prompt_version'] == 'judge-v3' and rep['exact'] == {} and rep['judge']['standin'] is True
    assert all(s['n'] == 3 and s['n_ok'] == 3 for s in rep['single'].values()) and rep['pairwise']['swapped'] is True
    assert m['control']['n_pairs'] == 2 * 3 and m['plan']['estimate']['total'] > 0

    gens = read_jsonl(d / 'generations.jsonl')
    assert len(gens) == 6 and {g['system'] for g in gens} == {'base', 'tuned'}
    assert all(g['output'] is not None and g['finish_reason'] in ('stop', 'length') and g['ref_nll'] > 0 and g['status'] == 'ok' for g in gens)
    judg = read_jsonl(d / 'judgments.jsonl')
    single = [j for j in judg if j['mode'] == 'single' and not j.get('control')]
    assert len(single) == 6 and {j['kind'] for j in single} == {'proof'} and all(1 <= j['score'] <= 10 for j in single)
    assert len([j for j in judg if j['mode'] == 'pairwise']) == 3 and len([j for j in judg if j.get('control')]) == 2 + 6
    report = (d / 'report.md').read_text()
    assert "These verdicts are the offline stand-in's" in report and 'n/a (0 of 3 have exact answers)' in report
    assert 'Reference likelihood (no judge)' in report
    nb = json.loads((d / 'math_judge.ipynb').read_text())
    assert sum(len(c.get('outputs', [])) for c in nb['cells']) > 5  # executed, with outputs
    assert_no_key(d, r.stdout, r.stderr)


def test_math_judge_on_a_users_files(tmp_path, check_ok):
    "Files of the same shape: training proofs in a CSV saved with a byte-order mark, benchmark problems as a folder of JSON files."
    from slm_nb.data import load_records, resolve_source
    train_f = tmp_path / 'train.csv'
    train_f.write_bytes(b'\xef\xbb\xbf' + resolve_source('demi:pretraining').read_bytes())
    probs = tmp_path / 'problems'; probs.mkdir()
    for i, r in enumerate(load_records('demi:benchmark', limit=2)):
        (probs / f'problem_{i}.json').write_text(json.dumps(dict(problem=r['prompt'][-1]['content'], problem_type=r['meta']['type'],
                                                                 solution=r['completion'][0]['content'])))
    r = slm_nb('run', 'math_judge', *SMALL, '-p', 'train_path', str(train_f), '-p', 'test_path', str(probs), '-p', 'n_control', '0',
               root=tmp_path / 'runs')
    check_ok(r)
    (d,) = runs_of(tmp_path / 'runs', 'math_judge')
    m = json.loads((d / 'metrics.json').read_text())
    assert m['headline']['n_problems'] == 2 and m['headline']['control_sanity_rate'] is None
    assert m['data']['test_sha256'] and m['data']['train_sha256'] and len(read_jsonl(d / 'generations.jsonl')) == 4


def test_math_judge_control_on_instruction_data(tmp_path, check_ok):
    "Instruction-style references (sentences, one-word labels) through the known-bad control: corrupted, never a crash."
    from slm_nb.data import load_records
    refs = [r['completion'][0]['content'] for r in load_records('alpaca:sample', limit=4)]
    assert 'The capital of Japan is Tokyo.' in refs and 'Negative' in refs  # the references that used to crash `corrupt`
    small = [x for k in range(0, len(SMALL), 3) if SMALL[k + 1] not in ('n_problems', 'n_control') for x in SMALL[k:k + 3]]
    r = slm_nb('run', 'math_judge', *small, '-p', 'test_path', 'alpaca:sample', '-p', 'n_problems', '4', '-p', 'n_control', '4',
               root=tmp_path / 'runs')
    check_ok(r)
    (d,) = runs_of(tmp_path / 'runs', 'math_judge')
    ctl = json.loads((d / 'metrics.json').read_text())['control']
    assert (ctl['n_pairs'], ctl['n_failed'], ctl['n_skipped']) == (4 * 3, 0, 0), ctl
    judg = read_jsonl(d / 'judgments.jsonl')
    assert {j['kind'] for j in judg if j['mode'] == 'single'} == {'instruction'}  # the rubric follows the content


def test_full_scale_recipe_dry_run_and_refusal(tmp_path):
    "The gpt-oss-20b recipe: a dry run prints the plan and exits cleanly; without it, this machine is refused before loading."
    r = slm_nb('run', 'math_judge', '-f', 'gpt-oss-20b', '-p', 'dry_run', 'true', root=tmp_path / 'dry')
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'dry run, stopped after the plan' in r.stdout and 'openai/gpt-oss-20b: 20.91B parameters, qlora through unsloth' in r.stdout
    (d,) = runs_of(tmp_path / 'dry', 'math_judge')
    assert json.loads((d / 'status.json').read_text())['status'] == 'dry_run'
    p = yaml.safe_load((d / 'params.yaml').read_text())
    assert p['parameters_file'].endswith('gpt-oss-20b.yaml') and p['model'] == 'openai/gpt-oss-20b' and p['dry_run'] is True
    assert not (d / 'adapter').exists() and not (d / 'metrics.json').exists()  # nothing trained, nothing measured
    import torch
    if torch.cuda.is_available(): return  # the refusal below is for machines without CUDA
    r = slm_nb('run', 'math_judge', '-f', 'gpt-oss-20b', root=tmp_path / 'real')
    assert r.returncode != 0
    (d,) = runs_of(tmp_path / 'real', 'math_judge')
    st = json.loads((d / 'status.json').read_text())
    assert st['ename'] == 'GpuRequiredError' and 'needs a CUDA GPU with about' in st['evalue'] and 'GiB CPU RAM free' in st['evalue'], st


def test_compare_runs_on_that_run(judged, check_ok):
    root, d, _ = judged
    r = slm_nb('run', 'compare_runs', '-p', 'runs', f'[{d}]', root=root)
    check_ok(r)
    (c,) = runs_of(root, 'compare_runs')
    for f in ('params.yaml', 'metrics.json', 'compare_runs.ipynb', 'comparison.csv', 'comparison_full.csv', 'comparison.md',
              'plots/compare.png'):
        assert (c / f).is_file() and (c / f).stat().st_size > 0, f
    rows = list(csv.DictReader((c / 'comparison.csv').open()))
    assert [row['run'] for row in rows] == [d.name]
    h = json.loads((d / 'metrics.json').read_text())['headline']
    cols = list(rows[0])
    assert cols[1].startswith('headline.')  # headline columns come first
    assert math.isclose(float(rows[0]['headline.base_ref_nll']), h['base_ref_nll'])
    assert rows[0]['status'] == 'succeeded'
    assert d.name in (c / 'comparison.md').read_text()
    mh = json.loads((c / 'metrics.json').read_text())['headline']
    assert mh['n_runs'] == 1 and mh['n_metrics_charted'] >= 5

    # With no runs named it finds the runs beside it (not itself, not other comparisons)
    r2 = slm_nb('run', 'compare_runs', '-p', 'only_experiment', 'math_judge', '-p', 'metrics', '[base_ref_nll, win_rate_tuned]', root=root)
    check_ok(r2)
    c2 = [x for x in runs_of(root, 'compare_runs') if x != c]
    assert len(c2) == 1
    m2 = json.loads((c2[0] / 'metrics.json').read_text())
    assert yaml.safe_load((c2[0] / 'params.yaml').read_text())['experiment'] == 'compare_runs'
    assert m2['runs'] == [str(d)] and m2['charted'] == ['headline.base_ref_nll', 'headline.win_rate_tuned']
    assert_no_key(c, r.stdout, r.stderr)
