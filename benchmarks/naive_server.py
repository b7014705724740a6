"""The naive baseline server of benchmarks/serving.py: one request at a time, PEFT set_adapter.

    python benchmarks/naive_server.py MODELS_DIR --port 8001 [--causal]

Every adapter folder under MODELS_DIR is loaded into one PeftModel (`load_adapter`); each
request takes a global lock, switches to its adapter with `set_adapter`, runs the model on
its inputs alone and answers. It speaks the two routes the load test uses: POST /v1/classify
({adapter, inputs: [text | {text, text_pair}]}) and POST /v1/completions (OpenAI fields
model, prompt, max_tokens; greedy).
"""

from __future__ import annotations

import argparse
import os
import threading
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import uvicorn  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from peft import PeftModel  # noqa: E402

from loralab.config import validate_config  # noqa: E402
from loralab.serving.discovery import adapter_folders  # noqa: E402


def load(models_dir: Path, causal: bool):
    import transformers

    from loralab.models.sources import resolve_model_source
    from loralab.tasks import read_adapter_metadata

    folders = adapter_folders(models_dir)
    config, _, labels = read_adapter_metadata(folders[0])
    if causal:
        from loralab.models.causal import load_causal_model, load_causal_tokenizer

        cfg = validate_config({"model": {"name": config.model.name, "task": "causal_lm"}})
        base, tokenizer = load_causal_model(cfg), load_causal_tokenizer(cfg)
    else:
        source = resolve_model_source(config.model.name)
        base = transformers.AutoModelForSequenceClassification.from_pretrained(
            source, num_labels=len(labels or [0, 1]), dtype=torch.float32)
        tokenizer = transformers.AutoTokenizer.from_pretrained(source)
    model = PeftModel.from_pretrained(base, str(folders[0]), adapter_name=folders[0].name)
    for folder in folders[1:]:
        model.load_adapter(str(folder), adapter_name=folder.name)
    return model.eval(), tokenizer


def classify_one(model, tokenizer, body: dict) -> dict:
    """One classify request alone: set_adapter, tokenise, forward (the caller holds the lock;
    the in-process headroom of benchmarks/serving_load.py times this same function)."""
    inputs = [i if isinstance(i, dict) else {"text": i} for i in body["inputs"]]
    with torch.no_grad():
        model.set_adapter(body["adapter"])
        enc = tokenizer([i["text"] for i in inputs],
                        [i.get("text_pair") for i in inputs]
                        if inputs[0].get("text_pair") else None,
                        truncation=True, max_length=128, padding=True, return_tensors="pt")
        probs = torch.softmax(model(**enc).logits, -1)
    return {"results": [{"label": int(p.argmax()), "confidence": float(p.max())}
                        for p in probs]}


def create_app(models_dir: Path, causal: bool) -> FastAPI:
    model, tokenizer = load(models_dir, causal)
    lock = threading.Lock()
    app = FastAPI()

    @app.get("/ready")
    def ready() -> dict:
        return {"status": "ready"}

    @app.post("/v1/classify")
    def classify(body: dict) -> dict:
        with lock:
            return classify_one(model, tokenizer, body)

    @app.post("/v1/completions")
    def complete(body: dict) -> dict:
        with lock, torch.no_grad():
            model.set_adapter(body["model"])
            enc = tokenizer(body["prompt"], return_tensors="pt")
            out = model.generate(**enc, max_new_tokens=body.get("max_tokens", 16),
                                 do_sample=False, top_k=None, top_p=None, temperature=None,
                                 pad_token_id=tokenizer.pad_token_id)
        new = out[0, enc["input_ids"].shape[1]:]
        return {"choices": [{"text": tokenizer.decode(new, skip_special_tokens=True)}],
                "usage": {"completion_tokens": int(new.shape[0])}}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models_dir")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--causal", action="store_true")
    args = parser.parse_args()
    import transformers

    transformers.utils.logging.set_verbosity_error()
    app = create_app(Path(args.models_dir), args.causal)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
