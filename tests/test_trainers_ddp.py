"""Two CPU processes (torchrun, gloo) train the tiny model: both ranks report the same loss and the same weights."""
import json, os, subprocess, sys
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent


def test_torchrun_two_cpu_processes(tmp_path, check_ok):
    from slm_nb.models import tiny_model
    from slm_nb.trainers import TrainConfig
    cfg = TrainConfig(model=str(tiny_model()), max_steps=3, batch_size=4, lora_r=4, logging_steps=1, precision='fp32',
                      data={'task': 'arithmetic', 'n': 48, 'digits': 2}, run_dir=str(tmp_path / 'run'))
    yml = cfg.save(tmp_path / 'train.yaml')
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    r = subprocess.run([str(VENV_BIN / 'slm-nb'), 'train', str(yml), '--launcher', 'torchrun', '--nproc', '2'],
                       capture_output=True, text=True, env=env, timeout=600)
    check_ok(r)
    ranks = [json.loads((tmp_path / 'run' / 'ranks' / f'rank{i}.json').read_text()) for i in (0, 1)]
    assert [x['world_size'] for x in ranks] == [2, 2]
    assert ranks[0]['final_loss'] == pytest.approx(ranks[1]['final_loss'], rel=1e-6)
    assert ranks[0]['loss_history'] == ranks[1]['loss_history']
    assert ranks[0]['trainable_checksum'] == pytest.approx(ranks[1]['trainable_checksum'], rel=1e-9)
    met = json.loads((tmp_path / 'run' / 'metrics.json').read_text())['train']
    assert met['world_size'] == 2 and met['global_step'] == 3


def test_accelerate_launch_runs_the_same_command(tmp_path, check_ok):
    "`slm-nb train --launcher accelerate` runs the unchanged trainer under accelerate launch (one CPU process here)."
    from slm_nb.models import tiny_model
    from slm_nb.trainers import TrainConfig
    cfg = TrainConfig(model=str(tiny_model()), max_steps=2, batch_size=4, lora_r=4, precision='fp32', logging_steps=1,
                      data={'task': 'arithmetic', 'n': 16}, run_dir=str(tmp_path / 'run'))
    yml = cfg.save(tmp_path / 'train.yaml')
    r = subprocess.run([str(VENV_BIN / 'slm-nb'), 'train', str(yml), '--launcher', 'accelerate', '--nproc', '1'],
                       capture_output=True, text=True, timeout=600)
    check_ok(r)
    assert 'accelerate.commands.launch' in r.stdout
    plain = cfg.replace(run_dir=str(tmp_path / 'plain')).save(tmp_path / 'plain.yaml')
    check_ok(subprocess.run([str(VENV_BIN / 'slm-nb'), 'train', str(plain)], capture_output=True, text=True, timeout=600))
    rank0, one = (json.loads((tmp_path / d / 'ranks' / 'rank0.json').read_text()) for d in ('run', 'plain'))
    assert rank0['world_size'] == 1 and len(rank0['loss_history']) == 2, rank0
    # the same run as without a launcher: same losses, same trained weights
    (steps, losses), (steps1, losses1) = (zip(*x['loss_history']) for x in (rank0, one))
    assert steps == steps1 and losses == pytest.approx(losses1, rel=1e-5), (rank0['loss_history'], one['loss_history'])
    assert rank0['trainable_checksum'] == pytest.approx(one['trainable_checksum'], rel=1e-6)
    assert (tmp_path / 'run' / 'adapter' / 'adapter_model.safetensors').exists()


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def _adapter(path):
    from safetensors.torch import load_file
    return load_file(str(path / 'adapter' / 'adapter_model.safetensors'))


def test_two_torchrun_nodes_match_one_process(tmp_path, check_ok):
    """Two torchrun "machines" (one process each, c10d rendezvous on 127.0.0.1) train the embedded model's LoRA: both
    ranks log the same losses, and the final adapter equals a single process's with the same global batch (2 x 4 = 8)."""
    from slm_nb.trainers import TrainConfig
    common = dict(model='smollm2-135m-instruct', max_steps=3, lora_r=4, logging_steps=1, precision='fp32', max_length=64,
                  learning_rate=1e-3, data={'task': 'arithmetic', 'n': 64, 'digits': 2}, seed=0)
    two = TrainConfig(**common, batch_size=4, run_dir=str(tmp_path / 'two')).save(tmp_path / 'two.yaml')
    one = TrainConfig(**common, batch_size=8, run_dir=str(tmp_path / 'one')).save(tmp_path / 'one.yaml')
    env, ep = {**os.environ, 'OMP_NUM_THREADS': '1'}, f'127.0.0.1:{_free_port()}'
    nodes = [subprocess.Popen([str(VENV_BIN / 'slm-nb'), 'train', str(two), '--launcher', 'torchrun', '--nproc', '1', '--nnodes', '2',
                               '--node-rank', str(r), '--rdzv-endpoint', ep], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
             for r in (0, 1)]
    outs = [p.communicate(timeout=900)[0] for p in nodes]
    for p, o in zip(nodes, outs): assert p.returncode == 0, o[-3000:]
    assert '--nnodes=2' in outs[0] and '--rdzv_backend=c10d' in outs[0]  # the exact command was printed
    check_ok(subprocess.run([str(VENV_BIN / 'slm-nb'), 'train', str(one)], capture_output=True, text=True, env=env, timeout=900))
    ranks = [json.loads((tmp_path / 'two' / 'ranks' / f'rank{i}.json').read_text()) for i in (0, 1)]
    assert [(x['rank'], x['world_size']) for x in ranks] == [(0, 2), (1, 2)]
    assert ranks[0]['loss_history'] == ranks[1]['loss_history']
    single = json.loads((tmp_path / 'one' / 'ranks' / 'rank0.json').read_text())
    l2, l1 = [l for _, l in ranks[0]['loss_history']], [l for _, l in single['loss_history']]
    assert l2 == pytest.approx(l1, rel=2e-3), (l2, l1)  # same global batch, same losses (float sums in another order)
    a, b = _adapter(tmp_path / 'two'), _adapter(tmp_path / 'one')
    diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    scale = max(float(b[k].abs().max()) for k in b)
    print(f'losses two nodes {l2}, one process {l1}; adapter max |diff| {diff:.2e} (largest weight {scale:.2e})')
    assert diff <= 5e-3 * scale, (diff, scale)  # measured 7e-4 of the largest weight (3 Adam steps, lr 1e-3)


FSDP_SAVE = """
import json, sys
from pathlib import Path
import torch, torch.distributed as dist
from torch.distributed.fsdp import fully_shard
from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM
from slm_nb.models import tiny_model
from slm_nb.trainers import full_state_dict

dist.init_process_group('gloo')
out = Path(sys.argv[1])
torch.manual_seed(0)  # the same random LoRA weights on both ranks (init_lora_weights=False: B is not zero)
model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model(), dtype=torch.float32),
                       LoraConfig(r=4, target_modules='all-linear', init_lora_weights=False))
want = {k.replace('.default', ''): v.clone() for k, v in get_peft_model_state_dict(model).items()}
for layer in model.base_model.model.model.layers: fully_shard(layer)
fully_shard(model)
assert all(type(p).__name__ == 'DTensor' for p in model.parameters())  # every weight is sharded over the two ranks
sd = full_state_dict(model)  # on every rank, as `train` does
if dist.get_rank() == 0:
    model.save_pretrained(out, state_dict=sd)
    got = load_file(str(out / 'adapter_model.safetensors'))
    json.dump(dict(keys=sorted(got) == sorted(want), n=len(got), max_abs_diff=max(float((got[k] - want[k]).abs().max()) for k in want)),
              open(out / 'check.json', 'w'))
dist.barrier(); dist.destroy_process_group()
"""


def test_fsdp2_save_writes_full_weights(tmp_path, check_ok):
    "FSDP2 (`fully_shard`) over two CPU processes (gloo): the gathered, saved adapter equals the unsharded weights."
    (tmp_path / 'save.py').write_text(FSDP_SAVE)
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    check_ok(subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', str(tmp_path / 'save.py'),
                             str(tmp_path / 'adapter')], capture_output=True, text=True, env=env, timeout=300))
    got = json.loads((tmp_path / 'adapter' / 'check.json').read_text())
    assert got['keys'] and got['n'] == 28 and got['max_abs_diff'] == 0.0, got  # 7 linear layers x 2 layers x (A, B)
