#!/usr/bin/env python
"""The notebook tests (`make test-nbs`): `nbdev-test` itself, same arguments, same cells, same exit status.

Each notebook that passes is also kept as it ran under `build/executed/` (`slm_nb.docs.save_executed`, stamped
with the `run_key` of its cells and the package's code), so that the docs built next (`make docs`) show those
outputs instead of running every cell a second time. nbdev-test's workers must inherit that hook, so it is set only
where they are forked (Linux); elsewhere this is plain nbdev-test and the docs run every cell themselves.

    .venv/bin/python scripts/test_nbs.py --n-workers 2 --timing
"""
import multiprocessing, sys

import nbdev.test

from slm_nb.docs import save_executed

if multiprocessing.get_start_method() == 'fork':
    nbdev.test.write_nb = save_executed  # what `--save` calls: here it writes under build/executed/, never to nbs/
    sys.argv.append('--save')
else: print(f"notebook tests: workers start by {multiprocessing.get_start_method()!r}, not fork: runs not kept, the docs run every cell")
nbdev.test.nbdev_test()
