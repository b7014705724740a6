"""Adapters for the serving tests: built with plain PEFT on tiny random models, with random
non-zero LoRA B (and perturbed heads) so that a wrong adapter or a missing delta shows."""

from __future__ import annotations

import json
from pathlib import Path

import torch

AUTO = {"sequence_classification": "AutoModelForSequenceClassification",
        "regression": "AutoModelForSequenceClassification",
        "token_classification": "AutoModelForTokenClassification",
        "causal_lm": "AutoModelForCausalLM"}
PEFT_TASK = {"sequence_classification": "SEQ_CLS", "regression": "SEQ_CLS",
             "token_classification": "TOKEN_CLS", "causal_lm": "CAUSAL_LM"}


def base_model(base: Path, task: str, labels: list[str] | None):
    import transformers

    cls = getattr(transformers, AUTO[task])
    if task == "causal_lm":
        return cls.from_pretrained(base, dtype=torch.float32)
    return cls.from_pretrained(base, num_labels=len(labels) if labels else 1,
                               dtype=torch.float32)


def make_adapter(base: Path, out: Path, task: str, *, labels: list[str] | None = None,
                 r: int = 4, targets: list[str] = ("query", "value"),
                 modules_to_save: list[str] | None = None, seed: int = 0,
                 rslora: bool = False, alpha: float = 8, loralab_files: bool = True,
                 rank_pattern: dict | None = None, layers: list[int] | None = None) -> Path:
    """A PEFT adapter folder (plus loralab's label_mapping.json unless loralab_files=False)."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    model = base_model(base, task, labels)
    config = LoraConfig(task_type=PEFT_TASK[task], r=r, lora_alpha=alpha,
                        target_modules=list(targets), modules_to_save=modules_to_save,
                        use_rslora=rslora, rank_pattern=rank_pattern or {},
                        layers_to_transform=layers)
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name or "lora_A" in name:
                param.normal_(0, 0.3)
            elif "modules_to_save" in name:
                param.add_(torch.randn_like(param) * 0.2)
    peft_model.save_pretrained(out)
    if loralab_files:
        mapping = {"task": task, "base_model": str(base), "labels": labels,
                   "max_length": 64}
        (out / "label_mapping.json").write_text(json.dumps(mapping), encoding="utf-8")
    return out


def peft_alone(base: Path, adapter: Path, task: str, labels: list[str] | None):
    """The adapter served alone through plain PEFT: the oracle."""
    from peft import PeftModel

    return PeftModel.from_pretrained(base_model(base, task, labels), str(adapter)).eval()


def write_loralab_config(folder: Path, base: Path, task: str, train: Path | None = None,
                         **data) -> None:
    """The loralab_config.yaml a trained adapter carries (data.train tells the server whether
    the adapter was trained on text pairs)."""
    import yaml

    config = {"model": {"name": str(base), "task": task, "max_length": 64},
              "data": {**({"train": str(train)} if train else {}), **data}}
    (folder / "loralab_config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")


def copy_tokenizer(source: Path, folder: Path) -> None:
    import transformers

    transformers.AutoTokenizer.from_pretrained(source).save_pretrained(folder)


# ---------------------------------------------------------------------------- a real server
def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """`loralab serve` as a real subprocess on 127.0.0.1 and a free port."""

    def __init__(self, models_dir: Path, *args: str, env: dict | None = None,
                 log: Path | None = None) -> None:
        import os
        import subprocess
        import sys

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log or models_dir.parent / f"serve-{self.port}.log"
        full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
        full_env.setdefault("OMP_NUM_THREADS", "1")
        self.handle = open(self.log, "w", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "loralab", "serve", str(models_dir), "--host", "127.0.0.1",
             "--port", str(self.port), *args], stdout=self.handle, stderr=subprocess.STDOUT,
            env=full_env)

    def wait_ready(self, timeout: float = 180) -> ServerProcess:
        import time

        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"loralab serve exited with {self.process.returncode}:\n"
                                   f"{self.output()}")
            try:
                if httpx.get(self.url + "/ready", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"loralab serve not ready after {timeout} s:\n{self.output()}")

    def output(self) -> str:
        self.handle.flush()
        return self.log.read_text(encoding="utf-8")[-4000:]

    def stop(self, sig: int | None = None, timeout: float = 60) -> int:
        import signal
        import subprocess

        if self.process.poll() is None:
            self.process.send_signal(sig or signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.handle.close()
        return self.process.returncode


def running_server(models_dir: Path, *args: str, env: dict | None = None):
    """A started server (context manager): always stopped at the end."""
    from contextlib import contextmanager

    @contextmanager
    def run():
        server = ServerProcess(models_dir, *args, env=env)
        try:
            yield server.wait_ready()
        finally:
            server.stop()

    return run()


def build_models_dir(root: Path, tiny_bert: Path, tiny_llama: Path | None = None) -> Path:
    """MODELS_DIR for the API tests: encoder adapters of every task (one trained on single
    texts, one plain PEFT) and, with tiny_llama, two causal adapters (one with a chat
    template in its folder)."""
    from conftest import sentiment_rows, write_jsonl

    models = root / "models"
    train = write_jsonl(root / "single.jsonl", sentiment_rows(8, 0))
    sentiment = make_adapter(tiny_bert, models / "run1" / "lora_sentiment_bert_r4",
                             "sequence_classification", labels=["neg", "pos"], seed=1,
                             modules_to_save=["pooler", "classifier"])
    write_loralab_config(sentiment, tiny_bert, "sequence_classification", train)
    copy_tokenizer(tiny_bert, sentiment)
    make_adapter(tiny_bert, models / "three", "sequence_classification",
                 labels=["x", "y", "z"], r=8, targets=["intermediate.dense"], seed=2)
    make_adapter(tiny_bert, models / "score", "regression", r=2, seed=3)
    make_adapter(tiny_bert, models / "ner", "token_classification",
                 labels=["O", "B-PER", "I-PER", "B-LOC", "I-LOC"], seed=4)
    make_adapter(tiny_bert, models / "plain_peft", "sequence_classification",
                 labels=["a", "b"], seed=5, loralab_files=False)
    if tiny_llama is not None:
        chat = make_adapter(tiny_llama, models / "chat", "causal_lm", r=4, seed=6,
                            targets=["q_proj", "v_proj"])
        copy_tokenizer(tiny_llama, chat)
        make_adapter(tiny_llama, models / "mlp", "causal_lm", r=8, seed=7,
                     targets=["gate_proj", "down_proj"])
    return models
