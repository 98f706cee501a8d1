"""The forgetting check's HellaSwag score, checked two ways on the embedded model, and its refusal to download.

lm-evaluation-harness's acc_norm on 20 items of the shipped HellaSwag copy must agree, within one point (here: item
for item), with `loglik_hellaswag`, the project's own scorer written out in a few lines. Nothing may reach the Hub:
the offline switches are set before anything imports `huggingface_hub`, `datasets.load_dataset` is made to fail, and
a missing data file fails with a message that says nothing is downloaded."""
import os
os.environ['HF_HUB_OFFLINE'] = os.environ['HF_DATASETS_OFFLINE'] = '1'
from pathlib import Path

import pytest


@pytest.fixture
def no_download(monkeypatch):
    "Any call to `datasets.load_dataset` or to the Hub's model lookup fails the test."
    import datasets, huggingface_hub
    def refuse(*a, **kw): raise AssertionError(f"a download was attempted: {a} {kw}")
    monkeypatch.setattr(datasets, 'load_dataset', refuse)
    monkeypatch.setattr(huggingface_hub.HfApi, 'model_info', refuse)


def test_lm_eval_agrees_with_own_scorer_on_embedded_model(no_download):
    from slm_nb.general import lm_eval_hellaswag, loglik_hellaswag, read_hellaswag, sample_items
    from slm_nb.models import load_model, load_tokenizer, resolve_model
    path = resolve_model('smollm2-135m-instruct')
    model, tok = load_model(path, 'fp32', 'cpu'), load_tokenizer(path)
    items = sample_items(read_hellaswag(), 20, seed=0)
    theirs, ours = lm_eval_hellaswag(model, tok, items, batch_size=16), loglik_hellaswag(model, tok, items, batch_size=16)
    assert [x['id'] for x in theirs['items']] == [x['id'] for x in ours['items']] == [x['id'] for x in items]
    assert abs(theirs['acc_norm'] - ours['acc_norm']) <= 0.01, (theirs['acc_norm'], ours['acc_norm'])
    assert theirs['acc_norm'] > 0.25, theirs['acc_norm']  # a real model beats chance (0.25) on these items, by a margin


def test_each_context_once_gives_hflms_numbers_on_embedded_model(no_download):
    "The forgetting check's log-likelihoods (each context run once) are lm-eval HFLM's own, request by request, on the real model in fp32."
    import time
    from slm_nb.general import _local_hflm, read_hellaswag, sample_items, shared_context_logliks
    from slm_nb.models import load_model, load_tokenizer, resolve_model
    path = resolve_model('smollm2-135m-instruct')
    model, tok = load_model(path, 'fp32', 'cpu'), load_tokenizer(path)
    stock = _local_hflm(model, tok, 16, share_contexts=False)
    reqs = [((it['query'], ' ' + e), *stock._encode_pair(it['query'], ' ' + e)) for it in sample_items(read_hellaswag(), 8, seed=1) for e in it['choices']]
    t0 = time.perf_counter(); want = stock._loglikelihood_tokens(reqs, disable_tqdm=True)
    t1 = time.perf_counter(); got = shared_context_logliks(model, reqs, 16)
    t2 = time.perf_counter()
    assert [g for _, g in got] == [g for _, g in want]
    gap = max(abs(a - b) for (a, _), (b, _) in zip(got, want))
    assert gap < 1e-3, gap
    print(f"{len(reqs)} requests: HFLM {t1 - t0:.1f} s, each context once {t2 - t1:.1f} s; largest difference {gap:.1e}")


def test_missing_data_fails_clearly_without_download(no_download, tmp_path):
    from slm_nb.data import DataError
    from slm_nb.general import hellaswag_score
    with pytest.raises(DataError, match=r"no such file.*Nothing is downloaded"):
        hellaswag_score('smollm2-135m-instruct', n_items=5, data=tmp_path/'hellaswag_val.txt')
