"""The commands users copy: every `run:` step of the GitHub workflows and every shell line of the README, checked offline.

`make` lines are expanded with `make -n -B` (nothing runs) and every pip command they would run is parsed the way pip
parses it: split with `shlex`, options by pip's own option parser, requirements with `packaging`. A target that does
not exist makes `make -n` fail. Nothing is installed and no network is used."""
import os, re, shlex, subprocess, sys
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
