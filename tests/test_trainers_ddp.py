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
    cfg = TrainConfig(model=str(tiny_model()), max_steps=2, batch_size=4, lora_r=4, precision='fp32',
                      data={'task': 'arithmetic', 'n': 16}, run_dir=str(tmp_path / 'run'))
    yml = cfg.save(tmp_path / 'train.yaml')
    r = subprocess.run([str(VENV_BIN / 'slm-nb'), 'train', str(yml), '--launcher', 'accelerate', '--nproc', '1'],
                       capture_output=True, text=True, timeout=600)
    check_ok(r)
    assert 'accelerate.commands.launch' in r.stdout
    rank0 = json.loads((tmp_path / 'run' / 'ranks' / 'rank0.json').read_text())
    assert rank0['world_size'] == 1 and rank0['final_loss'] > 0
    assert (tmp_path / 'run' / 'adapter' / 'adapter_model.safetensors').exists()
