"""JupyterLab as a user meets it: a headless server on 127.0.0.1, `lora_sft.ipynb` opened in Chromium with the
project's kernel, and its first cells run through the server's kernel API (REST + websocket)."""
import json, os, shutil, socket, subprocess, sys, tempfile, time, uuid
from pathlib import Path
from urllib.request import Request, urlopen

import pytest

root = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(root / 'scripts'))
from docs_check import browser_path

pytestmark = pytest.mark.skipif(not browser_path(), reason='no chromium here (as root on Debian, `make test` installs it with apt): '
                                'the JupyterLab browser test needs a real browser and downloads none')
KERNEL_DISPLAY = 'slm_nb (core)'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


@pytest.fixture(scope='module')
def lab():
    "A JupyterLab server of the core environment, rooted at the checkout."
    port, token = free_port(), uuid.uuid4().hex
    lab_bin = Path(sys.executable).parent / 'jupyter-lab'
    assert lab_bin.exists(), f'{lab_bin}: JupyterLab is not in the core environment (it is a dev dependency; run make env)'
    log, checkpoints = tempfile.TemporaryFile(), tempfile.mkdtemp(prefix='lab-checkpoints-')  # no .ipynb_checkpoints in the checkout
    proc = subprocess.Popen([str(lab_bin), '--no-browser', '--ip=127.0.0.1', f'--port={port}', f'--IdentityProvider.token={token}',
                             f'--ServerApp.root_dir={root}', '--ServerApp.open_browser=False', f'--FileCheckpoints.checkpoint_dir={checkpoints}'] + (['--allow-root'] if os.geteuid() == 0 else []), stdout=log, stderr=subprocess.STDOUT)
    base = f'http://127.0.0.1:{port}'
    for _ in range(120):
        try:
            urlopen(f'{base}/api/status?token={token}', timeout=2); break
        except OSError:
            if proc.poll() is not None: break
            time.sleep(0.5)
    else:
        proc.kill(); log.seek(0); pytest.fail(f'JupyterLab did not start (60 s at most):\n{log.read().decode()[-3000:]}')
    yield base, token
    proc.terminate(); proc.wait(20)


def api(base, token, path, body=None, method=None):
    req = Request(f'{base}{path}', data=None if body is None else json.dumps(body).encode(), method=method,
                  headers={'Authorization': f'token {token}', 'Content-Type': 'application/json'})
    with urlopen(req, timeout=30) as r: return json.loads(r.read() or b'null')


def test_kernel_is_registered(lab):
    base, token = lab
    specs = api(base, token, '/api/kernelspecs')['kernelspecs']
    assert 'slm-nb' in specs, f'kernels known to the server: {sorted(specs)}'
    assert specs['slm-nb']['spec']['display_name'] == KERNEL_DISPLAY


def test_notebook_opens_with_project_kernel(lab):
    "The page itself: the notebook renders, and the kernel JupyterLab selected (read from the toolbar) is the project's."
    from playwright.sync_api import sync_playwright
    base, token = lab
    shot = root / 'build' / 'jupyterlab' / 'lora_sft.png'
    shot.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=browser_path(), args=['--no-sandbox', '--disable-gpu'])
        page = browser.new_page(viewport={'width': 1400, 'height': 900})
        page.goto(f'{base}/lab/tree/nbs/experiments/lora_sft.ipynb?token={token}')
        page.wait_for_selector('.jp-Notebook .jp-Cell', timeout=90_000)
        kernel = page.locator('.jp-NotebookPanel-toolbar .jp-KernelName, .jp-NotebookPanel-toolbar [data-jp-item-name="kernelName"]').first
        page.wait_for_function("t => [...document.querySelectorAll('.jp-NotebookPanel-toolbar *')].some(e => e.textContent.trim() === t)",
                               arg=KERNEL_DISPLAY, timeout=90_000)
        text = kernel.inner_text().strip()
        heading = page.locator('.jp-Notebook h1').first.inner_text()
        page.screenshot(path=str(shot))
        browser.close()
    assert text == KERNEL_DISPLAY, text
    assert 'LoRA fine-tuning' in heading, heading
    print(f'screenshot: {shot.relative_to(root)}')


def run_cells(base, token, kernel_id, codes) -> list:
    "Execute each code through the kernel's websocket channel; (status, stdout text) per code."
    import websocket
    ws = websocket.create_connection(f"{base.replace('http', 'ws')}/api/kernels/{kernel_id}/channels?token={token}", timeout=300)
    out, session = [], uuid.uuid4().hex
    try:
        for code in codes:
            msg_id = uuid.uuid4().hex
            ws.send(json.dumps(dict(header=dict(msg_id=msg_id, username='test', session=session, msg_type='execute_request', version='5.3'),
                                    parent_header={}, metadata={}, channel='shell', buffers=[],
                                    content=dict(code=code, silent=False, store_history=True, user_expressions={}, allow_stdin=False))))
            text, status = '', None
            while status is None or text is None:
                m = json.loads(ws.recv())
                if m.get('parent_header', {}).get('msg_id') != msg_id: continue
                if m['msg_type'] == 'stream' and m['content']['name'] == 'stdout': text += m['content']['text']
                if m['msg_type'] == 'error': text += '\n'.join(m['content']['traceback'])
                if m['msg_type'] == 'execute_reply': status = m['content']['status']; break
            out.append((status, text))
    finally: ws.close()
    return out


def test_first_cells_run_through_kernel_api(lab, tmp_path):
    "The parameters cell and the set-up cell of lora_sft, run by the server's kernel: the run record is written by that kernel, of this environment."
    base, token = lab
    nb = json.loads((root / 'nbs' / 'experiments' / 'lora_sft.ipynb').read_text())
    code = [''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'code'][:2]
    assert 'parameters' in nb['cells'][[i for i, c in enumerate(nb['cells']) if c['cell_type'] == 'code'][0]]['metadata']['tags']
    sess = api(base, token, '/api/sessions', dict(path='nbs/experiments/lora_sft.ipynb', type='notebook', name='lora_sft.ipynb',
                                                  kernel=dict(name='slm-nb')), method='POST')
    try:
        assert sess['kernel']['name'] == 'slm-nb'
        res = run_cells(base, token, sess['kernel']['id'], [code[0], f'run_dir = {str(tmp_path / "run")!r}', code[1],
                        "import json, sys; e = json.loads((run_dir / 'env.json').read_text()); "
                        "print(run_dir.name, e['written_by'], params['max_steps'], params['model'], Path(sys.prefix).name)"])
    finally: api(base, token, f"/api/sessions/{sess['id']}", method='DELETE')
    for status, text in res: assert status == 'ok', text
    assert res[-1][1].strip() == f'run kernel 80 smollm2-135m-instruct {Path(sys.prefix).name}', res[-1][1]
