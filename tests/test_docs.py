"""The docs as a reader meets them: every rendered page opened in headless Chromium (scripts/docs_check.py), and the
check shown to fail on a page with an error output, a missing image or a broken link."""
import json, subprocess, sys
from pathlib import Path

import pytest

root = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(root / 'scripts'))
from docs_check import browser_path, check_site
import docs_html

pytestmark = pytest.mark.skipif(not browser_path(), reason='no chromium here (as root on Debian, `make test` installs it with apt): '
                                'the docs browser test needs a real browser and downloads none')
SITE = root / 'build' / 'docs'


def test_built_site_passes_in_browser():
    "`make docs` (run by `make test` before this) built every page; each opens clean, and screenshots are saved."
    if not (SITE / 'index.html').exists():
        subprocess.run([sys.executable, str(root / 'scripts' / 'docs_html.py')], check=True)
    pages = sorted(p.relative_to(SITE).as_posix() for p in SITE.rglob('*.html'))
    for want in ('index.html', 'core.html', 'judge.html', 'experiments/lora_sft.html', 'results/lora_sft.html'): assert want in pages
    assert check_site(SITE) == []
    for shot in ('index.png', 'api_core.png', 'results_lora_sft.png'): assert (SITE / 'screenshots' / shot).stat().st_size > 10_000
    # API pages carry the results of their cells, not only definitions
    outputs = {page: (SITE / f'{page}.html').read_text().count('class="jp-OutputArea-child') for page in ('data', 'tasks', 'sft')}
    assert min(outputs.values()) >= 2 and sum(outputs.values()) >= 10, outputs  # the data room's three pages


def _nb(cells):
    return dict(cells=cells, metadata={}, nbformat=4, nbformat_minor=5)


def test_check_fails_on_broken_pages(tmp_path):
    "An error output, a missing image and links to a missing page and anchor are each reported by page."
    proc, out = tmp_path / 'proc', tmp_path / 'site'
    proc.mkdir()
    err = dict(output_type='error', ename='ZeroDivisionError', evalue='division by zero',
               traceback=['Traceback (most recent call last)', 'ZeroDivisionError: division by zero'])
    (proc / '00_good.ipynb').write_text(json.dumps(_nb([dict(cell_type='markdown', metadata={}, source='# Good\n\n## Part one')])))
    (proc / '01_bad.ipynb').write_text(json.dumps(_nb([
        dict(cell_type='markdown', metadata={}, source='# Bad\n\n![plot](missing.png) [gone](02_gone.ipynb) [part](00_good.ipynb#part-two)'),
        dict(cell_type='code', metadata={}, source='1/0', outputs=[err], execution_count=1)])))
    docs_html.render(proc, out, pages=['00_good.ipynb', '01_bad.ipynb'])
    probs = check_site(out, screenshots=False)
    assert any(p.startswith('bad.html: error output') and 'ZeroDivisionError' in p for p in probs), probs
    assert any(p.startswith('bad.html: image does not load: missing.png') for p in probs), probs
    assert 'bad.html: broken link to gone.html' in probs, probs
    assert 'bad.html: link to a missing anchor good.html#part-two' in probs, probs
    assert not any(p.startswith('good.html') for p in probs), probs
