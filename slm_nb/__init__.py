"""Make small language models good at a job, and prove it with numbers: data, LoRA fine-tuning, compression, fast inference and honest judging, notebook-first."""

__version__ = "0.1.0"

from . import core as _core  # first: its log filters must be in place before transformers imports torchao (see core)
