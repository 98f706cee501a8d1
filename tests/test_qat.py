"""Quantization-aware training (slm_nb.qat) against the deployment formats' own code, and a tiny QAT run end to end.

The GGUF formats are checked against the `gguf` package in the notebook (nbs/05_qat.ipynb). W4A16 is compressed-tensors'
format, which lives in the compress environment (llm-compressor pins its own compressed-tensors): the test below rounds
random weights with slm_nb.qat here (torchao) and with compressed-tensors' `fake_quantize` there, and compares."""
import json, os, subprocess, sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
COMPRESS_PY = ROOT/'.venv-compress'/'bin'/'python'

CT_SCRIPT = r"""
import sys, torch
from compressed_tensors.quantization import QuantizationArgs
from compressed_tensors.quantization.lifecycle.forward import fake_quantize
from compressed_tensors.quantization.utils import calculate_qparams
d = torch.load(sys.argv[1])
w, g = d['w'], d['group_size']
args = QuantizationArgs(num_bits=4, type='int', symmetric=True, strategy='group', group_size=g)
b = w.reshape(w.shape[0], -1, g)
scale, zp = calculate_qparams(b.amin(-1), b.amax(-1), args)
torch.save(fake_quantize(w, scale, zp, args), sys.argv[2])
"""


@pytest.mark.skipif(not COMPRESS_PY.exists(), reason="no .venv-compress: build it with `make env-compress` (compressed-tensors lives there)")
@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_w4a16_matches_compressed_tensors(tmp_path, dtype):
    "slm_nb.qat's w4a16 rounding equals compressed-tensors' own, bit for bit but for values on a rounding boundary (one step)."
    from slm_nb.qat import fake_quantize_w4a16
    g = torch.Generator().manual_seed(0)
    w = (torch.randn(64, 576, generator=g) * 0.05).to(dtype)
    torch.save(dict(w=w, group_size=64), tmp_path/'w.pt')
    (tmp_path/'ct.py').write_text(CT_SCRIPT)
    r = subprocess.run([str(COMPRESS_PY), str(tmp_path/'ct.py'), str(tmp_path/'w.pt'), str(tmp_path/'ct.pt')], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    theirs, ours = torch.load(tmp_path/'ct.pt'), fake_quantize_w4a16(w, 64)
    assert theirs.dtype == ours.dtype == dtype
    step = (w.float().reshape(64, -1, 64).abs().amax(-1, keepdim=True) / 7.5)
    apart = ((ours.float() - theirs.float()).reshape(step.shape[:2] + (64,)) / step).abs()
    assert (ours == theirs).float().mean() > 0.99, (ours == theirs).float().mean()
    assert apart.max() <= 1 + 8 * torch.finfo(dtype).eps, apart.max()
    wrong = fake_quantize_w4a16(w, 32)  # another group size is another grid: the comparison can fail
    assert (wrong == theirs).float().mean() < 0.9


def test_tiny_qat_trains_and_matches_its_deployment(tmp_path):
    "A tiny LoRA QAT run (q4_0, merged W + sBA) trains, and its fake-quantized model is closer to the q4_0 file than plain training's model is to its file."
    from slm_nb.models import merge_adapter, tiny_model
    from slm_nb.tasks import make_task
    from slm_nb.trainers import TrainConfig, train
    from slm_nb.export import check_gguf, qat_check, quantize_gguf, write_gguf
    base, ds = tiny_model(hidden=64, intermediate=128), make_task('arithmetic', 64, seed=0)
    kl = {}
    for name, qat in (('plain', {}), ('qat', dict(qat='gguf-q4_0', qat_target='merged'))):
        m = train(TrainConfig(model=str(base), max_steps=12, batch_size=8, learning_rate=3e-3, logging_steps=2, lora_r=8, precision='fp32', **qat),
                  ds, run_dir=tmp_path/name)
        assert m['final_loss'] < m['loss_history'][0][1] - 0.1, m['loss_history']
        merged = merge_adapter(tmp_path/name/'adapter', tmp_path/name/'merged', precision='fp32')
        f16 = write_gguf(merged, tmp_path/name/'src.f16.gguf')
        path, _ = quantize_gguf(f16, tmp_path/name/'q4_0.gguf', 'q4_0')
        if name == 'plain': kl[name] = check_gguf(path, merged, 'q4_0')['mean_kl']  # PTQ: the file against the trained model
        else:
            assert json.loads((tmp_path/name/'adapter'/'qat.json').read_text())['target'] == 'gguf-q4_0'
            q = qat_check(path, merged, tmp_path/name/'adapter', 'q4_0', tmp_path/name/'fq')
            kl[name] = q['mean_kl']
            assert q['top1_agreement'] >= 0.95 and q['target_met'], q
    assert kl['qat'] < kl['plain'] / 10, kl


def test_lora_sft_refuses_a_qat_target_its_export_cannot_honour(tmp_path):
    "`slm-nb run lora_sft` with QAT for q4_0 and a q8_0 export stops before training, naming the conflict (no adapter written)."
    params = ['-p', 'qat', 'gguf-q4_0', '-p', 'export_gguf_type', 'q8_0']
    r = subprocess.run([sys.executable, '-m', 'slm_nb.cli', 'run', 'lora_sft', '--quiet', '--root', str(tmp_path), *params],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode != 0 and "export asks for GGUF q8_0" in r.stdout + r.stderr, (r.stdout + r.stderr)[-3000:]
    assert not list(tmp_path.rglob('adapter_config.json'))


@pytest.mark.parametrize('kw, conflict', [(dict(method='qlora'), "method='qlora'"), (dict(qat_target='merged', lora_dropout=0.1), 'lora_dropout=0'),
                                          (dict(trainer='unsloth'), "trainer='unsloth'")])
def test_train_config_refuses_qat_conflicts(kw, conflict):
    from slm_nb.core import ConfigError
    from slm_nb.trainers import TrainConfig
    with pytest.raises(ConfigError, match=conflict): TrainConfig(qat='gguf-q4_0', **kw)


def test_group_size_that_does_not_divide_the_layers_is_refused_before_training(tmp_path):
    from slm_nb.core import ConfigError
    from slm_nb.models import tiny_model
    from slm_nb.tasks import make_task
    from slm_nb.trainers import TrainConfig, train
    cfg = TrainConfig(model=str(tiny_model(hidden=64, intermediate=128)), max_steps=2, batch_size=4, precision='fp32', qat='w4a16', qat_group_size=48)
    with pytest.raises(ConfigError, match='not a multiple of the group size 48'): train(cfg, make_task('arithmetic', 8), run_dir=tmp_path)
    assert not (tmp_path/'adapter').exists() and not list((tmp_path/'checkpoints').glob('checkpoint-*'))
