#!/usr/bin/env python
"""Copy the experiment notebooks and the sample data into the package, so an installed wheel carries them.

`nbs/experiments/*.ipynb` -> `slm_nb/experiments/`, `nbs/recipes/*` -> `slm_nb/recipes/`, `nbs/data/**` -> `slm_nb/sample_data/`. The notebooks in `nbs/`
stay the source (edited in JupyterLab, rendered in the docs); the copies are what `pip install` ships. `make test`'s
sync check runs this and fails when a copy is stale, as it does for the README.
"""
import shutil
from pathlib import Path

root = Path(__file__).resolve().parent.parent
for src, dest, pattern in ((root/'nbs'/'experiments', root/'slm_nb'/'experiments', '*.ipynb'),
                           (root/'nbs'/'recipes', root/'slm_nb'/'recipes', '*'),
                           (root/'nbs'/'data', root/'slm_nb'/'sample_data', '**/*')):
    dest.mkdir(exist_ok=True)
    want = {f.relative_to(src) for f in src.glob(pattern) if f.is_file() and '__pycache__' not in f.parts}
    for f in sorted(dest.rglob('*'), reverse=True):  # a removed experiment or file leaves no stale copy
        if f.is_file() and f.relative_to(dest) not in want: f.unlink()
        elif f.is_dir() and not any(f.iterdir()): f.rmdir()
    for rel in sorted(want):
        (dest/rel).parent.mkdir(parents=True, exist_ok=True)
        if not (dest/rel).exists() or (dest/rel).read_bytes() != (src/rel).read_bytes(): shutil.copyfile(src/rel, dest/rel)
