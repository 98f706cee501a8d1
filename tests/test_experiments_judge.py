"""`slm-nb run math_judge` end to end on the offline stand-in judge (two models, so pairwise too), then
`slm-nb run compare_runs` on its run directory; checks what each run directory holds and that no key leaks."""
import csv, json, math, os, subprocess, sys
from pathlib import Path

import pytest, yaml

BIN = Path(sys.executable).parent
DUMMY_KEY = 'dummy-gemini-key-must-not-be-written-5c1e'


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
    "One small math_judge run: 3 problems, the embedded model as a, the tiny random model as b."
    from slm_nb.models import tiny_model
    root = tmp_path_factory.mktemp('runs')
    r = slm_nb('run', 'math_judge', '-p', 'n_problems', '3', '-p', 'max_new_tokens', '64',
               '-p', 'model_b', str(tiny_model()), '-p', 'standin_latency_s', '0.05', root=root)
    check_ok(r)
    (d,) = runs_of(root, 'math_judge')
    return root, d, r


def test_math_judge_run_directory(judged):
    root, d, r = judged
    assert 'exact_match_a' in r.stdout and 'win_rate_a' in r.stdout  # the headline is printed
    for f in ('params.yaml', 'env.json', 'status.json', 'metrics.json', 'math_judge.ipynb', 'generations.jsonl',
              'judgments.jsonl', 'report.md', 'report_table.csv', 'plots/judge_report.png', 'plots/score_vs_length.png'):
        assert (d / f).is_file() and (d / f).stat().st_size > 0, f
    assert json.loads((d / 'status.json').read_text())['status'] == 'succeeded'
    params = yaml.safe_load((d / 'params.yaml').read_text())
    assert params['experiment'] == 'math_judge' and params['n_problems'] == 3 and params['max_new_tokens'] == 64
    assert params['run_dir'] == str(d)

    m = json.loads((d / 'metrics.json').read_text())
    h = m['headline']
    assert set(h) >= {'n_problems', 'exact_match_a', 'exact_match_b', 'judge_score_a', 'judge_score_b', 'kappa_judge_vs_exact_a',
                      'win_rate_a', 'position_consistency', 'judge_parse_failures', 'judge_api_failures'}, h
    assert h['n_problems'] == 3
    for k in ('exact_match_a', 'exact_match_b', 'win_rate_a'): assert 0 <= h[k] <= 1, (k, h[k])
    for k in ('judge_score_a', 'judge_score_b'): assert 1 <= h[k] <= 10, (k, h[k])
    assert h['judge_parse_failures'] == 0 and h['judge_api_failures'] == 0  # the honest stand-in, no faults
    assert h['position_consistency'] == 1.0  # ... and it has no position bias
    rep = m['report']
    # The honest stand-in decides by the same answer extraction and equivalence as exact match: they must agree on
    # every item (kappa is 1, or undefined when all three items fall in one class).
    jv = next(iter(rep['single'].values()))['judge_vs_exact']
    assert jv is not None and jv['n'] == 3 and jv['agreement'] == 1.0, jv
    k = h['kappa_judge_vs_exact_a']
    assert k is None or k != k or k == 1.0, k  # None or NaN only when kappa is undefined
    assert len(rep['single']) == 2 and all(s['n'] == 3 and s['n_ok'] == 3 for s in rep['single'].values())
    assert rep['pairwise']['n'] == 3 and rep['pairwise']['swapped'] is True
    assert m['judge']['standin_requests'] >= 3 + 3  # single gradings of a (b's may repeat a's and be judged once) + pairs
    for s in m['generation'].values(): assert s['n_prompts'] == 3 and 0 < s['generated_tokens'] <= 3 * 64

    gens = read_jsonl(d / 'generations.jsonl')
    assert len(gens) == 6 and {g['system'][:2] for g in gens} == {'a:', 'b:'}
    judg = read_jsonl(d / 'judgments.jsonl')
    single = [j for j in judg if j['mode'] == 'single']
    pairs = [j for j in judg if j['mode'] == 'pairwise']
    assert len(single) == 6 and len(pairs) == 3
    assert all(1 <= j['score'] <= 10 for j in single) and all(p['consistent'] is True for p in pairs)
    # the honest stand-in decides correctness the way exact match does: they agree item by item
    exact = {(g['system'], g['id']): g['exact_correct'] for g in gens}
    assert all(j['correct'] == exact[(j['system'], j['id'])] for j in single), [(j['system'], j['id'], j['correct']) for j in single]

    nb = json.loads((d / 'math_judge.ipynb').read_text())
    assert sum(len(c.get('outputs', [])) for c in nb['cells']) > 5  # executed, with outputs
    assert_no_key(d, r.stdout, r.stderr)


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
    assert math.isclose(float(rows[0]['headline.exact_match_a']), h['exact_match_a'])
    assert rows[0]['status'] == 'succeeded'
    assert d.name in (c / 'comparison.md').read_text()
    mh = json.loads((c / 'metrics.json').read_text())['headline']
    assert mh['n_runs'] == 1 and mh['n_metrics_charted'] >= 5

    # With no runs named it finds the runs beside it (not itself, not other comparisons)
    r2 = slm_nb('run', 'compare_runs', '-p', 'only_experiment', 'math_judge', '-p', 'metrics', '[exact_match_a, win_rate_a]', root=root)
    check_ok(r2)
    c2 = [x for x in runs_of(root, 'compare_runs') if x != c]
    assert len(c2) == 1
    m2 = json.loads((c2[0] / 'metrics.json').read_text())
    assert yaml.safe_load((c2[0] / 'params.yaml').read_text())['experiment'] == 'compare_runs'
    assert m2['runs'] == [str(d)] and m2['charted'] == ['headline.exact_match_a', 'headline.win_rate_a']
    assert_no_key(c, r.stdout, r.stderr)
