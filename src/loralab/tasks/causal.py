"""Causal LM supervised fine-tuning: loss on the response tokens, judged by what it generates.

Training loss is a weighted sum of terms (training.loss), each logged on its own:
    ce          cross-entropy over the response tokens
    first_k_ce  extra cross-entropy over the first K response tokens of each example
    kd          KL divergence to a teacher's token distribution at temperature T (scaled by
                T^2): the base model itself with the adapter switched off (no second copy in
                memory), or a named teacher model
Evaluation reports the response-token loss and perplexity; with eval.generate the dataset's
metric suites (data.metrics) score generated answers (see loralab.evaluation.generation).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from loralab.config import Config
from loralab.errors import UserError
from loralab.tasks.base import Task
from loralab.tasks.sft_format import IGNORE, PromptFormat, encode_sft, pack, template_fields


class CausalCollator:
    """Right-pads input_ids (pad id), labels (-100) and the attention mask; packed rows carry
    position_ids and no attention mask (transformers then builds per-example causal masks)."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(f["input_ids"]) for f in features)
        packed = "position_ids" in features[0]
        batch: dict[str, list[list[int]]] = {"input_ids": [], "labels": []}
        if packed:
            batch["position_ids"] = []
        else:
            batch["attention_mask"] = []
        for f in features:
            gap = width - len(f["input_ids"])
            batch["input_ids"].append(f["input_ids"] + [self.pad_id] * gap)
            if "labels" in f:
                batch["labels"].append(f["labels"] + [IGNORE] * gap)
            if packed:
                last = f["position_ids"][-1] if f["position_ids"] else -1
                batch["position_ids"].append(f["position_ids"] + list(range(last + 1,
                                                                           last + 1 + gap)))
            else:
                batch["attention_mask"].append([1] * len(f["input_ids"]) + [0] * gap)
        if not batch["labels"]:
            del batch["labels"]
        return {k: torch.tensor(v, dtype=torch.long) for k, v in batch.items()}


def shifted(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits at position t predict the token at t+1."""
    return logits[:, :-1, :], labels[:, 1:]


def token_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-position negative log-likelihood [batch, seq-1], 0 where the label is ignored.

    Only the response positions go through the (fp32) softmax: with a 50k vocabulary, a full
    fp32 copy of every prompt position's logits would cost far more memory than the model.
    """
    logits, labels = shifted(logits, labels)
    mask = labels != IGNORE
    nll = torch.zeros(labels.shape, dtype=torch.float32, device=logits.device)
    if mask.any():
        nll[mask] = F.cross_entropy(logits[mask].float(), labels[mask], reduction="none")
    return nll


def first_k_mask(labels: torch.Tensor, k: int) -> torch.Tensor:
    """True on the first k response tokens of each example (of each packed segment too)."""
    response = labels != IGNORE
    starts = response & ~F.pad(response, (1, 0))[:, :-1]
    seen = torch.cumsum(response.long(), dim=1)           # response tokens so far, inclusive
    offset = torch.cummax(starts.long() * (seen - 1), dim=1).values
    return response & (seen - 1 - offset < k)


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor,
            temperature: float) -> torch.Tensor:
    """KL(teacher || student) over response positions, at temperature T, times T^2."""
    student, _ = shifted(student, labels)
    teacher, targets = shifted(teacher, labels)
    mask = targets != IGNORE
    s = F.log_softmax(student[mask].float() / temperature, dim=-1)
    t = F.log_softmax(teacher[mask].float() / temperature, dim=-1)
    if s.shape[0] == 0:
        return student.sum() * 0.0
    return F.kl_div(s, t, log_target=True, reduction="batchmean") * temperature ** 2


class CausalLMTask(Task):
    name = "causal_lm"
    default_metric = "loss"
    auto_model_class = "AutoModelForCausalLM"
    peft_task_type = "CAUSAL_LM"
    # no KV cache while training or scoring: it is unused, and without it transformers reads
    # packed rows' restarting position_ids as separate sequences (block-diagonal attention)
    model_kwargs = {"use_cache": False}
    generates = True

    def __init__(self) -> None:
        self.config: Config | None = None
        self.notes: list[str] = []
        self.teacher: torch.nn.Module | None = None

    def configure(self, config: Config) -> None:
        self.config = config
        self.format = PromptFormat.from_config(config.data)

    def label_names(self, train, config):
        return None

    def encode(self, records, tokenizer, labels, max_length):
        data = self.config.data
        encoded = encode_sft(records, tokenizer, self.format, max_length, data.truncation)
        self.notes.extend(n for n in encoded.notes if n not in self.notes)
        return encoded.features

    def has_gold(self, record):
        return self.format.response(record) is not None

    def pack_training(self, features: list[dict[str, Any]], max_length: int) -> list[dict]:
        return pack(features, max_length) if self.config.data.packing else features

    def collator(self, tokenizer):
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None \
            else tokenizer.eos_token_id
        return CausalCollator(pad)

    # ------------------------------------------------------------------ losses
    def loss(self, logits, labels):
        nll = token_nll(logits, labels)
        count = (shifted(logits, labels)[1] != IGNORE).sum().clamp(min=1)
        return nll.sum() / count

    def training_loss(self, model, batch, logits, labels):
        terms = self.config.training.loss if self.config else []
        parts: dict[str, torch.Tensor] = {}
        total = None
        for term in terms or [None]:
            kind = term.type if term else "ce"
            value = self._term(kind, term, model, batch, logits, labels)
            parts[kind] = value.detach()
            weighted = value * (term.weight if term else 1.0)
            total = weighted if total is None else total + weighted
        return total, (parts if len(parts) > 1 or "ce" not in parts else {})

    def _term(self, kind, term, model, batch, logits, labels) -> torch.Tensor:
        if kind == "ce":
            return self.loss(logits, labels)
        if kind == "first_k_ce":
            mask = first_k_mask(shifted(logits, labels)[1], term.k)
            nll = token_nll(logits, labels)
            return (nll * mask).sum() / mask.sum().clamp(min=1)
        teacher_logits = self.teacher_logits(model, batch)
        return kd_loss(logits, teacher_logits, labels, term.temperature)

    @torch.no_grad()
    def teacher_logits(self, model, batch) -> torch.Tensor:
        if self.teacher is not None:
            return self.teacher(**batch, **self.model_kwargs).logits
        with model.disable_adapter():
            return model(**batch, **self.model_kwargs).logits

    def correct(self, logits, labels, tolerance):
        raise NotImplementedError("lora.method=weighted is for encoder tasks")

    # ------------------------------------------------------------------ evaluation
    def gather(self, logits, batch):
        nll = token_nll(logits, batch["labels"])
        counts = (shifted(logits, batch["labels"])[1] != IGNORE).sum(dim=1)
        return list(zip(nll.sum(dim=1).tolist(), counts.tolist()))

    def metrics(self, predictions, encoded, labels):
        total = sum(n for n, _ in predictions)
        tokens = sum(c for _, c in predictions)
        loss = total / max(tokens, 1)
        return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)),
                "response_tokens": float(tokens)}

    def render(self, logits, record, feature, labels):
        raise NotImplementedError("causal LM predictions are generated text")

    def baseline_metrics(self, encoded, labels):
        return {}

    # ------------------------------------------------------------------ comparing two models
    def text_record(self, text):
        """The text fills the prompt template's one field, or is the prompt itself."""
        fields = {f.split(".")[0].split("[")[0]
                  for f in template_fields(self.format.prompt_template or "")}
        if not fields:
            return {"prompt": text}
        if len(fields) == 1:
            return {next(iter(fields)): text}
        raise UserError(f"the adapter's prompt template needs the fields "
                        f"{', '.join(sorted(fields))}: give them as columns of an inputs file")

    def decisions(self, logits, batch):
        """The most likely next token at every attended position."""
        best = logits.argmax(-1)
        mask = batch["attention_mask"].bool()
        return [best[i][mask[i]].tolist() for i in range(best.shape[0])]

    def agreement(self, reference, candidate, labels):
        same = sum(r == c for ref, cand in zip(reference, candidate)
                   for r, c in zip(ref, cand))
        total = sum(max(len(r), len(c)) for r, c in zip(reference, candidate))
        return {"next_token_agreement": 100.0 * same / max(total, 1)}
