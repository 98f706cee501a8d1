#!/usr/bin/env python
"""Write README.md from nbs/index.ipynb (nbdev-readme needs Quarto, which these machines cannot install).

Markdown cells are copied, code cells become ```python blocks, and text outputs (if a notebook carries any)
are shown as plain blocks. `make readme` runs it; `make test` checks the README is current.
"""
import json, re, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
nb = json.loads((root/'nbs'/'index.ipynb').read_text())
parts = []
for c in nb['cells']:
    src = ''.join(c['source']).strip()
    if not src or src.startswith('#| hide'): continue
    if c['cell_type'] == 'markdown':
        # nbdev's title + description cell: `# title` then `> description`
        parts.append(src)
    else:
        src = '\n'.join(l for l in src.splitlines() if not l.startswith('#|'))
        parts.append(f"```python\n{src}\n```")
        for o in c.get('outputs', []):
            txt = ''.join(o.get('text', '') or o.get('data', {}).get('text/plain', ''))
            if txt.strip(): parts.append(f"```\n{txt.rstrip()}\n```")
out = "<!-- Generated from nbs/index.ipynb by scripts/readme.py: edit the notebook, not this file. -->\n\n" + '\n\n'.join(parts) + '\n'
dest = root/'README.md'
if '--check' in sys.argv:
    if not dest.exists() or dest.read_text() != out:
        sys.exit("README.md is not the rendering of nbs/index.ipynb: run `make readme` (or nbdev-prepare) and commit.")
else: dest.write_text(out)
