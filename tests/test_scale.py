"""Generation over several processes: torchrun ranks each take a contiguous shard of the prompts, rank 0 gathers them
in order; the result equals one process's."""
import json, os, subprocess, sys
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
SCRIPT = """
import json, os, sys
from slm_nb.engines import HFEngine
from slm_nb.evaluation import generate_sharded, use_rank_device
prompts = [[{'role': 'user', 'content': f'What is {i} + {2 * i}?'}] for i in range(11)]
with HFEngine(sys.argv[1], precision='fp32', device=use_rank_device()) as e:  # each rank on its own GPU (LOCAL_RANK); the CPU here
    gens = generate_sharded(e, prompts, dict(max_new_tokens=8, batch_size=1))
if gens is not None:
    json.dump(dict(world=int(os.environ.get('WORLD_SIZE', 1)), texts=[g.text for g in gens], tokens=[g.generated_tokens for g in gens]),
              open(sys.argv[2], 'w'))
"""


def test_sharded_generation_matches_one_process(tmp_path, check_ok):
    (tmp_path / 'gen.py').write_text(SCRIPT)
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    check_ok(subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', str(tmp_path / 'gen.py'),
                             'smollm2-135m-instruct', str(tmp_path / 'two.json')], capture_output=True, text=True, env=env, timeout=600))
    check_ok(subprocess.run([sys.executable, str(tmp_path / 'gen.py'), 'smollm2-135m-instruct', str(tmp_path / 'one.json')],
                            capture_output=True, text=True, env=env, timeout=600))
    two, one = (json.loads((tmp_path / f).read_text()) for f in ('two.json', 'one.json'))
    assert (two['world'], one['world']) == (2, 1)
    assert len(two['texts']) == 11 and len(set(one['texts'])) > 5  # distinct answers, so an order mix-up would show
    assert two['texts'] == one['texts'] and two['tokens'] == one['tokens']
