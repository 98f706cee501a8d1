#!/usr/bin/env python
"""Build the documentation here, without Quarto: `make docs`.

1. nbdev's own processing (`nbdev-proc-nbs`, the first step of `nbdev-docs` on GitHub) into `_proc/`: every fast cell
   of the API notebooks runs (slm_nb.docs.exec_fast_cells), or its outputs come from the notebook tests' run of the
   same cells and code (`scripts/test_nbs.py` keeps them in build/executed/), show_doc renders, hidden cells go.
2. Each page of the site's sidebar (`nbs/sidebar.yml`) is rendered to HTML with nbconvert under `build/docs/`, with
   the page names Quarto gives them (`00_core.ipynb` -> `core.html`), Quarto's cell options honoured (`echo`,
   `output`, `include`), links to notebooks, to Markdown pages and to the docs site turned into links between the
   rendered pages, and a navigation bar from the sidebar.

Quarto cannot be installed on machines without access to GitHub's downloads; nbdev would try to install it (with
sudo): that step is replaced by a message. The GitHub workflow renders the site with Quarto from the same `_proc/`.

    .venv/bin/python scripts/docs_html.py [--out build/docs] [--no-proc]
"""
import argparse, html, json, re, shutil, sys, time
from pathlib import Path

import yaml

root = Path(__file__).resolve().parent.parent
HOST = 'https://slm-nb.github.io/slm_nb/'
DIRECTIVE = re.compile(r'^#\|\s*([\w-]+)\s*:\s*(.*?)\s*$')


def page_name(rel: str) -> str:
    "The name Quarto gives a notebook or Markdown page: numeric prefix dropped, `.html` (as nbdev's doc links expect)."
    p = Path(rel)
    return str(p.with_name(re.sub(r'^\d+[a-zA-Z0-9]*_', '', p.name.lower())).with_suffix('.html'))


def process(n_workers: int = 2) -> Path:
    "nbdev-proc-nbs, with its Quarto installer replaced by a message."
    import nbdev.quarto
    nbdev.quarto._ensure_quarto = lambda: print('docs: Quarto is not used here; pages are rendered with nbconvert')
    from slm_nb.docs import executed_outputs
    nbs = sorted((root / 'nbs').rglob('*.ipynb'))
    kept = sum(executed_outputs(f) is not None for f in nbs)
    print(f"docs: {kept} of {len(nbs)} notebooks ran in this checkout's notebook tests with the same cells and code: their "
          "outputs are shown, only exports and show_doc run again; the others run every fast cell here")
    t = time.time()
    cache = nbdev.quarto._pre_docs(n_workers=n_workers)[0]
    print(f'docs: nbdev processed the notebooks in {time.time() - t:.0f} s')
    return Path(cache)


def sidebar_pages(proc: Path) -> list:
    "The pages of the site, in sidebar order."
    side = yaml.safe_load((root / 'nbs' / 'sidebar.yml').read_text())['website']['sidebar']['contents']
    out = []
    def walk(items):
        for it in items:
            if isinstance(it, str): out.append(it)
            else: walk(it.get('contents', []))
    walk(side)
    missing = [p for p in out if not (proc / p).exists()]
    if missing: sys.exit(f'docs: nbs/sidebar.yml names pages that do not exist: {missing}')
    nbs = root / 'nbs'
    pages = [p.relative_to(nbs).as_posix() for pat in ('*.ipynb', 'experiments/*.ipynb', 'results/*.md') for p in nbs.glob(pat)]
    unlisted = sorted(set(pages) - set(out))
    if unlisted: sys.exit(f'docs: pages missing from nbs/sidebar.yml (the site would not link them): {unlisted}')
    return out


def cell_options(src: str):
    "Quarto's `#| key: value` options at the top of a cell, and the source without them."
    opts, lines = {}, src.splitlines()
    while lines and (m := DIRECTIVE.match(lines[0])):
        opts[m.group(1)] = m.group(2).lower(); lines.pop(0)
    return opts, '\n'.join(lines)


def quarto_cells(nb: dict) -> dict:
    "Apply what Quarto would: front matter as the title, `include`/`echo`/`output` options."
    cells = []
    for c in nb['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] == 'raw' and src.startswith('---'):
            fm = yaml.safe_load(src.strip().strip('-')) or {}
            head = f"# {fm.get('title', '')}" + (f"\n\n> {fm['description']}" if fm.get('description') else '')
            cells.append(dict(cell_type='markdown', metadata={}, source=head)); continue
        if c['cell_type'] == 'markdown' and src.startswith('<!-- WARNING'): continue
        if c['cell_type'] != 'code': cells.append(c); continue
        opts, body = cell_options(src)
        if opts.get('include') == 'false': continue
        c = dict(c, source=body, metadata={k: v for k, v in c.get('metadata', {}).items() if k != 'execution'})
        if opts.get('output') == 'false': c['outputs'] = []
        if opts.get('output') == 'asis':  # show_doc's Markdown becomes page content, as in Quarto
            for o in c['outputs']:
                if 'text/markdown' in o.get('data', {}):
                    md = re.sub(r'\{target="_blank"[^}]*\}', '', o['data']['text/markdown'])  # Pandoc link attributes
                    cells.append(dict(cell_type='markdown', metadata={}, source=md))
            continue
        if opts.get('echo') == 'false': c['metadata']['jupyter'] = {'source_hidden': True}; c['metadata']['transient'] = {'remove_source': True}
        cells.append(c)
    return dict(nb, cells=cells)


def md_notebook(text: str) -> dict:
    "A Markdown page (front matter + body) as a one-cell notebook, so it renders through the same exporter."
    title, body = '', text
    if text.startswith('---'):
        _, fm, body = text.split('---', 2)
        title = (yaml.safe_load(fm) or {}).get('title', '')
    return dict(cells=[dict(cell_type='markdown', metadata={}, source=(f'# {title}\n\n' if title else '') + body)],
                metadata={}, nbformat=4, nbformat_minor=5)


def fix_links(page: str, body: str, names: dict) -> str:
    "Links to notebooks, Markdown pages and the docs site point at the rendered pages, relative to `page`."
    depth = '../' * page.count('/')
    def repl(m):
        url = m.group(2)
        if url.startswith(HOST): url = url[len(HOST):] or 'index.html'
        elif re.match(r'^[a-z]+:|^#|^/', url): return m.group(0)
        else: url = str((Path(page).parent / url).as_posix()) if not url.startswith('..') else url
        path, _, anchor = url.partition('#')
        path = re.sub(r'^(\./)+', '', path)
        if path.endswith(('.ipynb', '.md')): path = names.get(path, page_name(path))
        return f'{m.group(1)}"{depth}{path}{"#" + anchor if anchor else ""}"'
    return re.sub(r'(href=)"([^"]+)"', repl, body)


def quarto_ids(body: str) -> str:
    "Headings also answer to the lower-case ids Quarto gives them (`#dataerror`), which nbdev's doc links use."
    def add(m):
        low = m.group(2).lower()
        return m.group(0) + (f'<span id="{low}"></span>' if low != m.group(2) else '')
    return re.sub(r'<h([1-6]) id="([^"]+)"[^>]*>', add, body)


def nav(page: str, pages: list, names: dict) -> str:
    depth = '../' * page.count('/')
    items = " · ".join(f'<a href="{depth}{names[p]}">{html.escape(names[p][:-5])}</a>' for p in pages)
    return f'<nav class="slm-nav" style="padding:.5rem 1rem;border-bottom:1px solid #ddd;font-size:.9rem">{items}</nav>'


def render(proc: Path, out: Path, pages: list | None = None) -> list:
    "Every sidebar page (or `pages`, relative to `proc`) to HTML under `out`; returns the pages written."
    from nbconvert import HTMLExporter
    import nbformat
    pages = pages or sidebar_pages(proc)
    names = {p: page_name(p) for p in pages}
    exporter = HTMLExporter(template_name='lab')
    if out.exists(): shutil.rmtree(out)
    for p in pages:
        src = proc / p
        nb = quarto_cells(nbformat.reads(src.read_text(), as_version=4)) if src.suffix == '.ipynb' else md_notebook(src.read_text())
        nb = nbformat.from_dict(nb)
        for i, c in enumerate(nb.cells): c.setdefault('id', f'c{i}')
        body, _ = exporter.from_notebook_node(nb)
        body = quarto_ids(fix_links(p, body, names))
        body = re.sub(r'(<body[^>]*>)', lambda m: m.group(1) + nav(p, pages, names), body, count=1)
        dest = out / names[p]
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(body)
        for files in src.parent.glob(f'{src.stem}_files'):  # a results page's figures
            shutil.copytree(files, dest.parent / files.name, dirs_exist_ok=True)
    print(f'docs: {len(pages)} pages rendered to {out.relative_to(root) if out.is_relative_to(root) else out}')
    return [out / names[p] for p in pages]


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out', default=str(root / 'build' / 'docs'))
    ap.add_argument('--no-proc', action='store_true', help='render the existing _proc/ without processing again')
    a = ap.parse_args()
    proc = root / '_proc' if a.no_proc else process()
    render(proc, Path(a.out).absolute())
