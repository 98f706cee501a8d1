#!/usr/bin/env python
"""Copy the experiment notebooks and the sample data into the package, so an installed wheel carries them.

`nbs/experiments/*.ipynb` -> `slm_nb/experiments/`, `nbs/data/*` -> `slm_nb/sample_data/`. The notebooks in `nbs/`
stay the source (edited in JupyterLab, rendered in the docs); the copies are what `pip install` ships. `make test`'s
sync check runs this and fails when a copy is stale, as it does for the README.
"""
import shutil
from pathlib import Path

root = Path(__file__).resolve().parent.parent
for src, dest, pattern in ((root/'nbs'/'experiments', root/'slm_nb'/'experiments', '*.ipynb'),
                           (root/'nbs'/'data', root/'slm_nb'/'sample_data', '*')):
    dest.mkdir(exist_ok=True)
    want = {f.name for f in src.glob(pattern) if f.is_file()}
    for f in dest.iterdir():
        if f.name not in want: f.unlink()  # a removed experiment or file leaves no stale copy
    for name in sorted(want):
        if not (dest/name).exists() or (dest/name).read_bytes() != (src/name).read_bytes(): shutil.copyfile(src/name, dest/name)
