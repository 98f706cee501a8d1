"""The road of a user who installs slm_nb: a wheel built from this checkout, installed into a fresh virtual environment,
used from a folder outside the checkout. The fresh environment reuses the core environment's dependencies (a `.pth`
file), so nothing is downloaded; slm_nb itself comes only from the wheel."""
import json, os, subprocess, sys, sysconfig
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def run(*cmd, cwd, env=None, timeout=900):
    return subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_installed_wheel_lists_and_runs_experiments(tmp_path, check_ok):
    whl_dir, venv, work = tmp_path/'wheel', tmp_path/'venv', tmp_path/'elsewhere'
    work.mkdir()
    check_ok(run(sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation', str(ROOT), '-w', whl_dir, cwd=tmp_path))
    wheel = next(whl_dir.glob('slm_nb-*.whl'))
    check_ok(run(sys.executable, '-m', 'venv', '--without-pip', venv, cwd=tmp_path))
    py = venv/'bin'/'python'
    site = Path(run(py, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])', cwd=tmp_path).stdout.strip())
    (site/'_core_env.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')  # the core environment's dependencies
    check_ok(run(py, '-m', 'pip', 'install', '-q', '--no-deps', '--no-index', wheel, cwd=tmp_path))
    r = run(py, '-c', 'import slm_nb; print(slm_nb.__file__)', cwd=work)
    check_ok(r)
    assert r.stdout.strip().startswith(str(site)), r.stdout  # the wheel's copy, not the checkout
    r = run(py, '-c', "from slm_nb.core import package_path; p = package_path('sample_data', 'nbs/data'); "
            "print(p, sorted(f.name for f in p.iterdir())); from slm_nb.data import load_records; "
            "print('rows', len(load_records('demi:pretraining')), len(load_records('demi:benchmark')), len(load_records('gsm8k:test')))", cwd=work)
    check_ok(r)
    assert r.stdout.startswith(str(site)) and 'demi_sample.csv' in r.stdout, r.stdout  # the samples
    assert 'rows 49 39 1319' in r.stdout, r.stdout  # the real DEMI split (math_judge's default data) by its short name
    # The experiments' kernel, registered in the fresh environment, so papermill runs them there.
    check_ok(run(py, '-m', 'ipykernel', 'install', '--prefix', venv, '--name', 'slm-nb', '--display-name', 'slm_nb (wheel)', cwd=work))
    env = dict(JUPYTER_PATH=str(venv/'share'/'jupyter'), JUPYTER_PREFER_ENV_PATH='1', SLM_NB_EXPERIMENTS='')
    r = run(venv/'bin'/'slm-nb', 'list', cwd=work, env=env)
    check_ok(r)
    for name in ('lora_sft', 'compress', 'engine_bench', 'math_judge', 'compare_runs'): assert name in r.stdout, r.stdout
    assert 'max_steps' in r.stdout and 'judge_backend' in r.stdout, r.stdout  # with their parameters
    assert 'recipes (slm-nb run <experiment> -f <recipe>): gpt-oss-20b' in r.stdout, r.stdout  # the shipped recipe
    from slm_nb.models import tiny_model
    r = run(venv/'bin'/'slm-nb', 'run', 'lora_sft', '-p', 'model', str(tiny_model()), '-p', 'n_train', '16', '-p', 'n_test', '4',
            '-p', 'max_steps', '2', '-p', 'batch_size', '4', '-p', 'max_new_tokens', '4', '-p', 'precision', 'fp32',
            '-p', 'export_gguf_type', 'q8_0', '-p', 'hellaswag_items', '20', '--root', work/'runs', '--no-progress', cwd=work, env=env)
    check_ok(r)
    d = next((work/'runs').iterdir())
    for f in ['params.yaml', 'env.json', 'metrics.json', 'status.json', 'report.md', 'lora_sft.ipynb', 'plots/loss.png',
              'adapter/adapter_model.safetensors', 'gguf/Modelfile', 'gguf/README.md', 'gguf/gguf_check.json']:
        assert (d/f).exists(), f
    assert json.loads((d/'status.json').read_text())['status'] == 'succeeded'
    assert yaml.safe_load((d/'params.yaml').read_text())['max_steps'] == 2
    gguf = json.loads((d/'metrics.json').read_text())['gguf']  # the tuned model exported from the wheel's own converter, checked
    assert gguf['passed'] and (d/'gguf'/gguf['file']).exists() and gguf['file'].endswith('.q8_0.gguf'), gguf
    assert json.loads((d/'metrics.json').read_text())['forgetting']['n_items'] == 20  # HellaSwag read from the wheel's copy
    r = run(venv/'bin'/'slm-nb', 'export-gguf', '--adapter', d/'adapter', '--type', 'f16', '--out', work/'gguf', cwd=work, env=env)
    check_ok(r)
    assert 'self-check passed' in r.stdout and (work/'gguf'/'Modelfile').exists(), r.stdout
    kernel = json.loads((venv/'share'/'jupyter'/'kernels'/'slm-nb'/'kernel.json').read_text())
    assert kernel['argv'][0].startswith(str(venv)), kernel  # the run's kernel was the fresh environment's Python
    executed = json.loads((d/'lora_sft.ipynb').read_text())
    assert executed['metadata']['kernelspec']['name'] == 'slm-nb'
    assert str(site) in json.dumps(executed['metadata'].get('papermill', {})), executed['metadata'].get('papermill')  # the wheel's notebook ran
