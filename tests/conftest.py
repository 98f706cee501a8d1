"""Shared helpers for the non-notebook tests."""
import pytest


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
    import os, subprocess, time
    def run(nbdev_test, notebook:str, flag:str, timeout:int, **env):
        t0 = time.perf_counter()
        r = subprocess.run([str(nbdev_test), notebook, '--flags', flag, '--timing'], cwd=nbdev_test.parents[2],
                           capture_output=True, text=True, timeout=timeout,
                           env={**os.environ, 'TOKENIZERS_PARALLELISM': 'false', 'HF_HUB_OFFLINE': '1', **env})
        check_ok(r)
        print(f"{notebook} (flag `{flag}`, {nbdev_test.parents[1].name}): {time.perf_counter() - t0:.0f} s")
    return run
