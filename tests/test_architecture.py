"The layers read bottom-up: every slm_nb import points down the declared order, in the package and in the notebooks."
import ast, json, re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The layer order, bottom first. `testing` (test doubles) sits above what it needs and below what it tests; no library
# module may import it.
ORDER = ['core', 'tracking', 'models', 'chat', 'precision', 'data', 'tasks', 'sft', 'scoring', 'testing', 'engines', 'engines_vllm', 'engines_llamacpp', 'evaluation', 'general', 'qat', 'plan', 'utilization', 'trainers', 'rl', 'compress', 'export', 'serve',
         'judge', 'judge_calls', 'judge_runs', 'judge_report', 'cli', 'docs']
RANK = {m: i for i, m in enumerate(ORDER)}
MAX_CELL_LINES, MAX_FUNCTION_LINES = 60, 40

def slm_imports(tree, own:str|None=None):
    "(line, imported module) for every `slm_nb` import in `tree`, at any depth (relative imports resolved)."
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ''
            if node.level: mod = 'slm_nb.' + mod if mod else 'slm_nb'
            if mod.startswith('slm_nb.'): yield node.lineno, mod.split('.')[1]
            elif mod == 'slm_nb':
                for a in node.names: yield node.lineno, a.name
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith('slm_nb.'): yield node.lineno, a.name.split('.')[1]

def test_package_imports_point_down():
    bad = []
    for f in sorted((ROOT/'slm_nb').glob('*.py')):
        own = f.stem
        if own.startswith('_'): continue
        assert own in RANK, f"{f.name}: a module the layer order does not know; add it to ORDER in {Path(__file__).name}"
        src = f.read_text()
        for line, mod in slm_imports(ast.parse(src)):
            text = src.splitlines()[line - 1].strip()
            if mod not in RANK: bad.append(f"slm_nb/{f.name}:{line}: imports unknown module {mod!r}: {text}")
            elif RANK[mod] >= RANK[own]: bad.append(f"slm_nb/{f.name}:{line}: {own} imports {mod}, which is not below it: {text}")
            elif mod == 'testing': bad.append(f"slm_nb/{f.name}:{line}: the library imports the test doubles: {text}")
    assert not bad, '\n'.join(bad)

def _module_notebooks():
    for nb in sorted((ROOT/'nbs').glob('*.ipynb')):
        cells = json.loads(nb.read_text())['cells']
        m = [re.search(r'#\|\s*default_exp\s+(\S+)', ''.join(c['source'])) for c in cells if c['cell_type'] == 'code']
        m = [x.group(1) for x in m if x]
        if m: yield nb, m[0], [c for c in cells if c['cell_type'] == 'code']

def _code(cell) -> str:
    "A cell's source without IPython magics (which `ast` cannot parse)."
    return '\n'.join('' if l.lstrip().startswith(('%', '!')) else l for l in ''.join(cell['source']).splitlines())

def test_notebooks_use_only_what_came_before():
    bad = []
    for nb, own, cells in _module_notebooks():
        for k, c in enumerate(cells):
            for line, mod in slm_imports(ast.parse(_code(c))):
                if mod in RANK and RANK[mod] > RANK[own]:
                    bad.append(f"{nb.name} code cell {k}: imports slm_nb.{mod}, which comes after {own}")
    assert not bad, '\n'.join(bad)

def test_cells_and_functions_are_short():
    bad = []
    for nb, own, cells in _module_notebooks():
        for k, c in enumerate(cells):
            src = _code(c)
            n = len([l for l in src.splitlines() if l.strip()])
            if n > MAX_CELL_LINES: bad.append(f"{nb.name} code cell {k}: {n} lines of code (at most {MAX_CELL_LINES})")
            if '#| export' not in src: continue
            for node in ast.walk(ast.parse(src)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith('__'):
                    length = node.end_lineno - node.lineno + 1
                    doc = ast.get_docstring(node) or ''
                    if length > MAX_FUNCTION_LINES and 'long because' not in doc:
                        bad.append(f"{nb.name} code cell {k}: {node.name} is {length} lines (at most {MAX_FUNCTION_LINES}, "
                                   "or say why in its docstring: 'long because ...')")
    assert not bad, '\n'.join(bad)

def test_the_check_catches_an_upward_import(tmp_path):
    "The import check is not vacuous: an upward import inside a function is found."
    tree = ast.parse("def f():\n    from slm_nb.judge import make_judge\n")
    assert [(l, m) for l, m in slm_imports(tree)] == [(2, 'judge')]
    assert RANK['judge'] > RANK['engines']

# Duplicate code: runs of this many identical lines (stripped; blank lines, comments, imports and docstrings left out)
# may appear once in the package, the scripts and the experiment notebooks' code, as pylint's `symilar` counts them.
MIN_DUPLICATE_LINES = 6

def _code_lines(src:str) -> list[str]:
    "The lines `symilar` compares: stripped, without blanks, comments, imports and docstrings."
    try: tree = ast.parse(src)
    except SyntaxError: tree = None
    skip = set()
    for node in ast.walk(tree) if tree else []:
        if isinstance(node, (ast.Import, ast.ImportFrom)): skip.update(range(node.lineno, node.end_lineno + 1))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)) and node.body:
            d = node.body[0]
            if isinstance(d, ast.Expr) and isinstance(d.value, ast.Constant) and isinstance(d.value.value, str):
                skip.update(range(d.lineno, d.end_lineno + 1))
    out = []
    for i, l in enumerate(src.splitlines(), 1):
        s = l.strip()
        if i in skip or not s or s.startswith('#'): continue
        out.append(s)
    return out

def _duplicate_sources() -> dict:
    srcs = {f"slm_nb/{f.name}": f.read_text() for f in sorted((ROOT/'slm_nb').glob('*.py')) if f.name != '_modidx.py'}
    srcs.update({f"scripts/{f.name}": f.read_text() for f in sorted((ROOT/'scripts').glob('*.py'))})
    for nb in sorted((ROOT/'nbs'/'experiments').glob('*.ipynb')):
        cells = [c for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code']
        srcs[f"nbs/experiments/{nb.name}"] = '\n'.join(_code(c) for c in cells)
    return srcs

def duplicate_runs(srcs:dict, n:int=MIN_DUPLICATE_LINES) -> list[str]:
    "Places where `n` consecutive compared lines appear more than once (within a file or across files)."
    seen, found = {}, []
    for name, src in srcs.items():
        lines = _code_lines(src)
        for i in range(len(lines) - n + 1):
            key = tuple(lines[i:i + n])
            if key in seen:
                found.append(f"{name} (code line {i + 1}) repeats {seen[key][0]}: {' / '.join(key)[:200]}")
            seen.setdefault(key, (name, i))
    return found

def test_no_duplicate_code():
    found = duplicate_runs(_duplicate_sources())
    assert not found, '\n'.join(found[:20])

def test_the_duplicate_check_finds_a_copy():
    block = '\n'.join(f"x{i} = f({i}) + g({i})" for i in range(6))
    assert duplicate_runs({'a.py': block, 'b.py': 'y = 1\n' + block}) and not duplicate_runs({'a.py': block})

def test_notebook_numbers_follow_the_layers():
    "Sorted by file name, the API notebooks export their modules in layer order (a reader goes down the layers)."
    mods = [(nb.name, own) for nb, own, _ in _module_notebooks()]
    ranks = [RANK.get(own, -1) for _, own in mods]
    assert ranks == sorted(ranks), '\n'.join(f"{name}: {own} (layer {RANK.get(own)})" for name, own in mods)
