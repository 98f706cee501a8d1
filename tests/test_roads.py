"""The commands users copy: every `run:` step of the GitHub workflows and every shell line of the README, checked offline.

`make` lines are expanded with `make -n -B` (nothing runs) and every pip command they would run is parsed the way pip
parses it: split with `shlex`, options by pip's own option parser, requirements with `packaging`. A target that does
not exist makes `make -n` fail. Nothing is installed and no network is used."""
import json, os, re, shlex, subprocess, sys
from pathlib import Path

import pytest, yaml

ROOT = Path(os.environ.get('SLM_NB_ROADS_ROOT') or Path(__file__).resolve().parent.parent)  # another checkout, to show a failure


def workflow_commands(root:Path) -> list[tuple[str, str]]:
    "(where, command) for every `run:` step of .github/workflows/*.yaml."
    out = []
    for f in sorted((root/'.github'/'workflows').glob('*.y*ml')):
        for job, spec in (yaml.safe_load(f.read_text()).get('jobs') or {}).items():
            for i, step in enumerate(spec.get('steps') or []):
                if 'run' in step:
                    out += [(f"{f.name} job {job} step {i}", l.strip()) for l in step['run'].splitlines() if l.strip()]
    return out


def readme_commands(root:Path) -> list[tuple[str, str]]:
    "(where, command) for every line of the README's ```sh blocks, comments dropped, `!` of notebook lines removed."
    text, out = (root/'README.md').read_text(), []
    for block in re.findall(r'```(?:sh|bash|shell)\n(.*?)```', text, re.S):
        for l in block.splitlines():
            cmd = re.sub(r'\s+#.*$', '', l).strip().lstrip('!').strip()
            if cmd and not cmd.startswith('#'): out.append(('README.md', cmd))
    return out


def pip_problems(argv:list[str], root:Path) -> list[str]:
    "What pip would refuse in `pip install <argv>` before downloading anything."
    from pip._internal.commands import create_command
    from pip._vendor.packaging.requirements import InvalidRequirement, Requirement
    try: opts, args = create_command('install').parse_args(list(argv))
    except SystemExit: return [f"pip's option parser refuses {shlex.join(argv)!r}"]
    problems = []
    for a in args:
        try: Requirement(a)
        except InvalidRequirement as e: problems.append(f"invalid requirement {a!r}: {e}")
    for c in opts.constraints + opts.requirements:
        if not (root/c).exists(): problems.append(f"no such constraints/requirements file {c}")
    return problems


def pip_commands(line:str) -> list[list[str]]:
    "The argument lists after `pip install` in a shell line (several commands joined by && or ; allowed)."
    out = []
    for part in re.split(r'&&|;|\|\|', line):
        if not re.search(r'\bpip install\b', part): continue
        words = shlex.split(part)
        for i in range(len(words) - 1):
            if words[i] == 'pip' and words[i + 1] == 'install': out.append(words[i + 2:])
    return out


def check_command(where:str, cmd:str, root:Path) -> list[str]:
    words = shlex.split(cmd)
    if words[0] == 'make':
        r = subprocess.run(['make', '-n', '-B', *words[1:]], cwd=root, capture_output=True, text=True, timeout=120)
        if r.returncode: return [f"{where}: `{cmd}`: make -n fails: {r.stderr.strip()[-300:]}"]
        lines = r.stdout.replace('\\\n', ' ').splitlines()  # recipe lines continued with a backslash are one command
    else:
        if '/' in words[0] and words[0].startswith('.venv') and not (root/words[0]).exists():
            return [f"{where}: `{cmd}`: {words[0]} does not exist after `make env`"]
        lines = [cmd]
    return [f"{where}: `{cmd}`: {p}" for l in lines for argv in pip_commands(l) for p in pip_problems(argv, root)]


def all_problems(root:Path) -> list[str]:
    return [p for where, cmd in workflow_commands(root) + readme_commands(root) for p in check_command(where, cmd, root)]


def test_the_commands_users_copy_parse():
    cmds = workflow_commands(ROOT) + readme_commands(ROOT)
    assert any('make test' in c for _, c in cmds) and any('make demo' in c for _, c in cmds), cmds
    problems = all_problems(ROOT)
    assert not problems, '\n'.join(problems)


def test_a_broken_command_is_caught(tmp_path):
    "The check is not vacuous: the quoted torch-plus-index argument that once broke CI is refused."
    assert pip_problems(['-q', 'torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu'], tmp_path)
    assert not pip_problems(['-q', 'torch==2.13.0', '--index-url', 'https://download.pytorch.org/whl/cpu'], tmp_path)
    assert pip_problems(['-c', 'no/such.txt', 'x'], tmp_path)
    assert check_command('here', 'make no-such-target', ROOT)


# The first commands a newcomer types: `slm-nb list` and `slm-nb run`. They must not open with a warning.
SLM_NB = [sys.executable, '-m', 'slm_nb.cli']


def parameter_names(nb_path:Path) -> list[str]:
    "Every name the notebook's `parameters` cell assigns, read by Python's own parser (not papermill's)."
    import ast, json
    cells = [c for c in json.loads(nb_path.read_text())['cells'] if 'parameters' in c.get('metadata', {}).get('tags', [])]
    tree = ast.parse(''.join(cells[0]['source']))
    return [t.id for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))
            for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)]


def test_slm_nb_list_is_quiet_and_complete():
    "`slm-nb list` over every shipped experiment: nothing on stderr, and every parameter the cell assigns is listed."
    r = subprocess.run([*SLM_NB, 'list'], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stderr == '', r.stderr
    listed, exp = {}, None
    for l in r.stdout.splitlines():
        if re.match(r'\w+  \(kernel: ', l): exp = listed.setdefault(l.split()[0], [])
        elif (m := re.match(r'    (\w+)', l)) and exp is not None: exp.append(m.group(1))
    for nb in sorted((ROOT/'nbs'/'experiments').glob('*.ipynb')):
        assert listed.get(nb.stem) == parameter_names(nb), (nb.name, listed.get(nb.stem))


TINY = """import json, pathlib
pathlib.Path(run_dir, 'seen.json').write_text(json.dumps(dict(system=system, note=note, n=n, lr=lr, flag=flag, items=items)))"""


def tiny_experiment(folder:Path) -> Path:
    "A one-cell experiment notebook, run in the project's kernel: it records the parameters it received."
    import nbformat
    nb = nbformat.v4.new_notebook(metadata={'kernelspec': {'name': 'slm-nb', 'language': 'python', 'display_name': 'slm_nb (core)'}})
    params = nbformat.v4.new_code_cell("system = 'Be brief.'  # System message\nnote = None  # Anything\nn = 3  # A count\n"
                                       "lr = 0.1  # A rate\nflag = False  # A switch\nitems = ['a']  # Names\nrun_dir = None  # Where results go")
    params.metadata['tags'] = ['parameters']
    nb.cells = [params, nbformat.v4.new_code_cell(TINY)]
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder/'tiny.ipynb')
    return folder


def test_slm_nb_run_quiet_is_quiet_and_passes_values_verbatim(tmp_path):
    "`slm-nb run --quiet`: no kernel transport warning; `-p` strings arrive as typed, `-f` strings as the file has them."
    env = {**os.environ, 'SLM_NB_EXPERIMENTS': str(tiny_experiment(tmp_path/'exp'))}
    (tmp_path/'p.yaml').write_text("note: 'Answer: briefly'\nitems: [yes, 'no']\n")
    r = subprocess.run([*SLM_NB, 'run', 'tiny', '--quiet', '--root', str(tmp_path/'runs'), '-f', str(tmp_path/'p.yaml'),
                        '-p', 'system', 'Solve #3 rigorously', '-p', 'n', '7', '-p', 'lr', '1e-3', '-p', 'flag', 'Yes'],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'without encryption' not in r.stdout + r.stderr and 'WARNING' not in r.stderr, r.stderr
    seen = json.loads(next((tmp_path/'runs').glob('*/seen.json')).read_text())
    assert seen == dict(system='Solve #3 rigorously', note='Answer: briefly', n=7, lr=1e-3, flag=True, items=[True, 'no']), seen
