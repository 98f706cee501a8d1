"""Shared helpers for the non-notebook tests, and the summary of what did not run.

With `$SLM_NB_SKIPS_FILE` set (`make test-py` sets it), the session ends by writing there every skipped test with its
reason, and the notebook cells that the fast notebook suite (`nbdev-test` without `--flags`) leaves out, by test flag,
with the ones a test here ran in another environment marked: `make test` prints that file last, so a green run cannot
hide a feature that never ran."""
import json, os, re, tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_FLAGGED_RAN: list[tuple[str, str, str]] = []  # (notebook, flag, environment) run by `run_flagged_cells` this session


def _excerpt(text:str, n:int) -> str:
    "The part of a subprocess's output that explains a failure: from nbdev-test's `...Error in <notebook>` on, else the tail."
    i = text.find('Error in ')
    return text[max(0, i - 300):i + n] if i >= 0 else text[-n:]


@pytest.fixture(scope='session')
def check_ok():
    "Fail with the subprocess's own words (not a truncated repr) when it exited non-zero."
    def check(r, what:str|None=None):
        what = what or ' '.join(map(str, r.args))
        if r.returncode != 0:
            pytest.fail(f"{what} exited {r.returncode}\n--- stdout ---\n{_excerpt(r.stdout or '', 3000)}\n"
                        f"--- stderr ---\n{_excerpt(r.stderr or '', 8000)}", pytrace=False)
    return check


@pytest.fixture(scope='session')
def run_flagged_cells(check_ok):
    "Run a notebook's cells of one test flag with another environment's `nbdev-test`; fail in its own words."
    import subprocess, time
    def run(nbdev_test, notebook:str, flag:str, timeout:int, **env):
        t0 = time.perf_counter()
        r = subprocess.run([str(nbdev_test), notebook, '--flags', flag, '--timing'], cwd=nbdev_test.parents[2],
                           capture_output=True, text=True, timeout=timeout,
                           env={**os.environ, 'TOKENIZERS_PARALLELISM': 'false', 'HF_HUB_OFFLINE': '1', **env})
        check_ok(r)
        _FLAGGED_RAN.append((Path(notebook).stem, flag, nbdev_test.parents[1].name))
        print(f"{notebook} (flag `{flag}`, {nbdev_test.parents[1].name}): {time.perf_counter() - t0:.0f} s")
    return run


def flagged_cells(root:Path) -> tuple[dict[str, dict[str, int]], list[str]]:
    "Cells per test flag and notebook under `root/nbs` (flags from pyproject's `tst_flags`), and the skip_exec notebooks."
    pp = root/'pyproject.toml'
    if not pp.exists() or not (root/'nbs').is_dir(): return {}, []
    flags = tomllib.loads(pp.read_text()).get('tool', {}).get('nbdev', {}).get('tst_flags', '').split()
    counts, not_executed = {}, []
    for nb in sorted((root/'nbs').rglob('*.ipynb')):
        rel = nb.relative_to(root/'nbs')
        if any(p.startswith(('_', '.')) for p in rel.parts): continue  # nbdev skips these
        name, cells = str(rel.with_suffix('')), json.loads(nb.read_text())['cells']
        if cells and re.search(r'^-?\s*skip_exec:\s*true', ''.join(cells[0]['source']), re.M): not_executed.append(name)
        for c in cells:
            if c['cell_type'] != 'code': continue
            for f in {m.group(1) for m in re.finditer(r'^#\|\s*(\w+)\s*$', ''.join(c['source']), re.M)} & set(flags):
                counts.setdefault(f, {}).setdefault(name, 0)
                counts[f][name] += 1
    return counts, not_executed


def skip_summary(reports, n_tests:int, root:Path=ROOT, flagged_ran=()) -> str:
    "The block `make test` ends with: skipped tests and why, then the notebook cells the fast suite did not run."
    lines = [f"== not run in this `make test` ==",
             f"pytest: {len(reports)} of {n_tests} tests skipped" + (':' if reports else '.') if n_tests else
             "pytest: no tests ran."]
    for r in reports:
        reason = r.longrepr[2] if isinstance(r.longrepr, tuple) else str(r.longrepr)
        lines.append(f"  {r.nodeid}: {reason.removeprefix('Skipped: ')}")
    counts, not_executed = flagged_cells(root)
    if counts: lines.append("notebook cells left out of the fast notebook suite (nbdev-test without --flags), by flag:")
    ran = {(nb, f): env for nb, f, env in flagged_ran}
    for f, per_nb in sorted(counts.items()):
        nbs = ', '.join(f"{nb} ({k})" + (f" (run here by pytest in {ran[nb, f]})" if (nb, f) in ran else '')
                        for nb, k in per_nb.items())
        lines.append(f"  {f}: {sum(per_nb.values())} cells: {nbs}")
    if not_executed: lines.append(f"notebooks not executed by nbdev-test (skip_exec): {', '.join(not_executed)}")
    return '\n'.join(lines) + '\n'


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    path = os.environ.get('SLM_NB_SKIPS_FILE')
    if not path: return
    st = terminalreporter.stats
    skipped = st.get('skipped', [])  # setup, call, and whole modules skipped at collection
    n = len(skipped) + sum(len([r for r in st.get(k, []) if r.when == 'call']) for k in ('passed', 'failed'))
    n += len([r for r in st.get('error', []) if getattr(r, 'when', None) == 'setup'])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    passed, failed = (len([r for r in st.get(k, []) if r.when == 'call']) for k in ('passed', 'failed'))
    failed += len(st.get('error', []))
    closing = f"pytest: {passed} passed, {failed} failed, {len(skipped)} skipped\n"  # make test's last line: the counts
    Path(path).write_text(skip_summary(skipped, n, flagged_ran=_FLAGGED_RAN) + closing)
