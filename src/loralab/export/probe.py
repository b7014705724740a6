"""The inputs a reference and its copy both see, in this order of preference:

    --inputs FILE       what `loralab predict --file` reads: a .txt file (one text per line)
                        or a data file of the task's prediction inputs
    validation data     the split the adapter's loralab_config.yaml names (or holds out)
    generated text      fixed sentences plus seeded random token sequences from the tokenizer

Encoder tasks take up to 128 examples. Causal LMs take 8, each cut to its last tokens so that
the stored logits (positions x vocabulary, for both models) stay within LOGIT_BUDGET; the first
four examples' full prompts are also continued greedily.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from loralab.config import Config, DataConfig
from loralab.data.batches import model_inputs_collator
from loralab.errors import UserError
from loralab.tasks import Task

SENTENCES = (
    "The service was quick and the staff were friendly.",
    "I would not recommend this place to anyone.",
    "John Smith moved to London in March to work at Acme Corp.",
    "What time does the next train to Paris leave?",
    "The quarterly results beat expectations, the company said on Monday.",
    "Please send the invoice to alice@example.com before Friday.",
    "It was fine, nothing special.",
    "Write a function that returns the sum of two numbers.",
    "The capital of France is",
    "Shares fell sharply after the announcement.",
    "Can you help me book a flight to Berlin?",
    "This is the best film I have seen all year!",
)
MAX_EXAMPLES = 128
MAX_GENERATIVE_EXAMPLES = 8
GENERATION_PROMPTS = 4
LOGIT_BUDGET = 48_000_000  # logits kept per model: 192 MB in fp32


@dataclass
class ProbeInputs:
    description: str          # where the inputs came from, for export.json and the terminal
    features: list[dict[str, Any]]
    batch_size: int
    notes: list[str] = field(default_factory=list)
    prompt_ids: list[list[int]] = field(default_factory=list)  # generative tasks only

    def batches(self, task: Task, tokenizer: Any) -> list[dict[str, torch.Tensor]]:
        collate = model_inputs_collator(task.collator(tokenizer))
        return [collate(self.features[i:i + self.batch_size])
                for i in range(0, len(self.features), self.batch_size)]

    def prompts(self) -> list[list[int]]:
        """Prompt token ids to continue greedily (causal LMs: the part before the answer)."""
        return self.prompt_ids


def probe_inputs(task: Task, tokenizer: Any, labels: list[str] | None, config: Config,
                 inputs: Path | None) -> ProbeInputs:
    notes: list[str] = []
    if inputs is not None:
        records, description = file_records(task, inputs, config), f"inputs file {inputs}"
    else:
        records, description = validation_records(task, config, notes)
    if not records:
        records, description = generated_records(task, tokenizer, config), "generated text"
    limit = MAX_GENERATIVE_EXAMPLES if task.generates else MAX_EXAMPLES
    records = records[:limit]
    features = task.encode(records, tokenizer, labels, config.model.max_length)
    if not features:
        raise UserError(f"no usable example in the {description} to compare the models on")
    if not task.generates:
        return ProbeInputs(f"{description} ({len(features)} examples)", features, 32, notes)
    prompts = [f["input_ids"][:f.get("_prompt_length", len(f["input_ids"]))]
               for f in features[:GENERATION_PROMPTS]]
    keep = max(8, LOGIT_BUDGET // (len(features) * max(len(tokenizer), 1)))
    if any(len(f["input_ids"]) > keep for f in features):
        notes.append(f"the logit comparison reads the last {keep} tokens of each example "
                     "(memory budget); greedy continuations use the full prompts")
        features = [last_tokens(f, keep) for f in features]
    return ProbeInputs(f"{description} ({len(features)} examples)", features, 4, notes,
                       prompts)


def last_tokens(feature: dict[str, Any], keep: int) -> dict[str, Any]:
    """The feature's last `keep` positions (every per-token list is cut alike)."""
    width = len(feature["input_ids"])
    start = max(width - keep, 0)
    return {k: v[start:] if isinstance(v, list) and len(v) == width else v
            for k, v in feature.items() if k != "_prompt_length"}


def file_records(task: Task, path: Path, config: Config) -> list[dict[str, Any]]:
    """What `loralab predict --file` reads: a .txt file (one text a line) or a data file in
    the shape of the task's prediction inputs, completed into task records."""
    if path.suffix == ".txt":
        lines = path.read_text(encoding="utf-8-sig").splitlines()
        records = [{"text": line, "text_pair": None, "_src": f"{path}:{i}"}
                   for i, line in enumerate(lines, start=1) if line.strip()]
    else:
        from loralab.data import read_file

        records = read_file(path, DataConfig(), task.input_spec, "test")
    return task.prepare_inputs(records, config)


def validation_records(task: Task, config: Config,
                       notes: list[str]) -> tuple[list[dict[str, Any]], str]:
    """The adapter's own validation split, when its config names data that can be read here."""
    if not (config.data.train or config.data.hub):
        return [], ""
    from loralab.data import load_splits

    try:
        records = load_splits(config.data, task.records).get("validation") or []
    except (UserError, OSError) as exc:
        notes.append(f"the adapter's validation data could not be read here ({exc}); "
                     "generated text was used instead")
        return [], ""
    source = config.data.validation or config.data.hub or config.data.train
    return records, f"validation data {source}"


def generated_texts(tokenizer: Any, count: int = 20, seed: int = 0) -> list[str]:
    """The fixed sentences, then seeded random sequences of the tokenizer's own tokens (so a
    tiny vocabulary still gets inputs it knows)."""
    rng = random.Random(seed)
    special = set(tokenizer.all_special_ids)
    ids = [i for i in range(len(tokenizer)) if i not in special]
    texts = list(SENTENCES)
    while len(texts) < count and ids:
        sample = [rng.choice(ids) for _ in range(rng.randint(4, 24))]
        text = tokenizer.decode(sample, skip_special_tokens=True).strip()
        if text:
            texts.append(text)
    return texts


def generated_records(task: Task, tokenizer: Any, config: Config) -> list[dict[str, Any]]:
    records = [{"text": text, "text_pair": None, "_src": f"generated:{i}"}
               for i, text in enumerate(generated_texts(tokenizer), start=1)]
    return task.prepare_inputs(records, config)
