#!/usr/bin/env python
"""Open every rendered docs page in headless Chromium and check it: `make docs` runs it after building.

Checks: no error output or traceback on any page, every image loads, every link between pages resolves (anchors
included). Saves screenshots of the index, one API page and one results page under `<site>/screenshots/`.
The browser is Debian's `chromium` (driven by Playwright with `executable_path`: nothing is downloaded).

    .venv/bin/python scripts/docs_check.py [build/docs]
"""
import re, shutil, sys
from pathlib import Path
from urllib.parse import unquote, urlparse

root = Path(__file__).resolve().parent.parent
SHOTS = {'index.html': 'index.png', 'core.html': 'api_core.png', 'results/lora_sft.html': 'results_lora_sft.png'}
ERROR_TEXT = re.compile(r'Traceback \(most recent call last\)|^\w*(Error|Exception): ', re.M)

PAGE_JS = """() => ({
  ids: [...document.querySelectorAll('[id]')].map(e => e.id),
  links: [...document.querySelectorAll('a[href]')].map(a => a.href),
  images: [...document.images].map(i => ({src: i.getAttribute('src').slice(0, 80), ok: i.complete && i.naturalWidth > 0})),
  errors: [...new Set([...document.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"], .jp-OutputArea-output pre, .output_error')]
            .map(e => e.innerText).filter(t => /Traceback \\(most recent call last\\)|^\\w*(Error|Exception): /m.test(t)).map(t => t.slice(0, 200)))],
})"""


def browser_path() -> str | None:
    "Debian's chromium (or an installed Google Chrome), if there is one."
    return next((p for p in map(shutil.which, ('chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable')) if p), None)


def check_site(site: Path, screenshots: bool = True) -> list:
    "Problems found on the pages under `site` (empty: all good)."
    from playwright.sync_api import sync_playwright
    site, problems, ids, links = Path(site).absolute(), [], {}, []
    pages = sorted(p for p in site.rglob('*.html'))
    if not pages: return [f'{site}: no pages']
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=browser_path(), args=['--no-sandbox', '--disable-gpu'])
        page = browser.new_page(viewport={'width': 1280, 'height': 900})
        for f in pages:
            rel = f.relative_to(site).as_posix()
            page.goto(f.as_uri(), wait_until='load')
            info = page.evaluate(PAGE_JS)
            ids[f] = set(info['ids'])
            problems += [f'{rel}: error output: {e!r}' for e in info['errors']]
            problems += [f'{rel}: image does not load: {i["src"]}' for i in info['images'] if not i['ok']]
            for link in info['links']:
                u = urlparse(link)
                if u.scheme == 'file': links.append((rel, Path(unquote(u.path)), u.fragment))
            if screenshots and rel in SHOTS:
                (site / 'screenshots').mkdir(exist_ok=True)
                page.screenshot(path=str(site / 'screenshots' / SHOTS[rel]), full_page=False)
        browser.close()
    for rel, target, anchor in links:
        if target.is_dir(): target = target / 'index.html'
        if not target.exists(): problems.append(f'{rel}: broken link to {target.relative_to(site) if target.is_relative_to(site) else target}')
        elif anchor and target.suffix == '.html' and anchor not in ids.get(target, set()):
            problems.append(f'{rel}: link to a missing anchor {target.relative_to(site)}#{anchor}')
    return problems


if __name__ == '__main__':
    site = Path(sys.argv[1] if len(sys.argv) > 1 else root / 'build' / 'docs')
    if not browser_path(): sys.exit('docs: no chromium here (Debian: apt-get install chromium): the pages were not opened in a browser')
    probs = check_site(site)
    for p in probs: print('docs: FAIL', p)
    n = len(list(site.rglob('*.html')))
    if probs: sys.exit(f'docs: {len(probs)} problem(s) in {n} pages')
    print(f'docs: {n} pages opened in Chromium: no error output, every image loads, every link between pages resolves; '
          f'screenshots in {(site / "screenshots").relative_to(root) if site.is_relative_to(root) else site / "screenshots"}')
