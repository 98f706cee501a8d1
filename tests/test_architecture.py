"The layers read bottom-up: every slm_nb import points down the declared order, in the package and in the notebooks."
import ast, json, re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The layer order, bottom first. `testing` (test doubles) sits above what it needs and below what it tests; no library
# module may import it.
ORDER = ['core', 'models', 'data', 'scoring', 'testing', 'engines', 'engines_vllm', 'evaluation', 'trainers', 'compress',
         'judge', 'cli']
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
