"""Causal LM supervised fine-tuning: loss on the response tokens, judged by what it generates.

Training loss is a weighted sum of terms (training.loss), each logged on its own:
    ce          cross-entropy over the response tokens
    first_k_ce  extra cross-entropy over the first K response tokens of each example
    kd          KL divergence to a teacher's token distribution at temperature T (scaled by
                T^2): the base model itself with the adapter switched off (no second copy in
                memory), or a named teacher model
Training and evaluation never compute logits for positions that carry no loss: the model's
final hidden states are captured before lm_head (loralab.models.head), and only response
positions go through it, a chunk at a time (loralab.tasks.response_loss). `training_loss` and
`loss` (full logits in, the same numbers out) remain the reference the tests compare with.
Evaluation reports the response-token loss and perplexity; with eval.generate the dataset's
metric suites (data.metrics) score generated answers (see loralab.evaluation.generation).
With eval.constrain every generated answer (eval, predict, eval.generate) follows a grammar:
any JSON object, or the JSON Schema of data.schema_file (loralab.models.grammar).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from loralab.config import Config
from loralab.data.spec import RecordSpec
from loralab.errors import UserError
from loralab.metrics.metric_registry import metrics_of
from loralab.models.adapter_io import attach_adapter, attach_adapters
from loralab.models.build import BuiltModel, build_causal_adapters, build_causal_model
from loralab.models.causal import load_causal_model, load_causal_tokenizer
from loralab.models.generate import Decoding, Generation, generate
from loralab.models.grammar import constraint_spec
from loralab.models.head import OutputHead, head_inputs
from loralab.models.placement import Placement
from loralab.models.tokenizer import folder_has_tokenizer, load_tokenizer
from loralab.tasks.base import ServingBase, Task, TrainingOutput
from loralab.tasks.response_loss import (
    Teacher,
    first_k_mask,
    position_terms,
    response_loss,
    response_nll,
    response_positions,
)
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
    records = RecordSpec(name, "fields")
    base_model_answers = True
    # no KV cache while training or scoring: it is unused, and without it transformers reads
    # packed rows' restarting position_ids as separate sequences (block-diagonal attention)
    model_kwargs = {"use_cache": False}
    generates = True
    serves = "generate"

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
        return CausalCollator(tokenizer.pad_token_id)

    # ------------------------------------------------------------------ model
    def build_model(self, config: Config, labels: list[str] | None,
                    placement: Placement) -> BuiltModel:
        return build_causal_model(config, placement)

    def load_tokenizer(self, config: Config) -> Any:
        return load_causal_tokenizer(config)

    def load_model(self, config: Config, labels: list[str] | None, adapter: Path | None,
                   placement: Placement) -> tuple[torch.nn.Module, Any]:
        model = load_causal_model(config, placement=placement)
        if adapter is not None:
            model = attach_adapter(model, adapter)
        if adapter is not None and folder_has_tokenizer(adapter):
            tokenizer = load_tokenizer(config.model.name, source=str(adapter))
        else:
            tokenizer = load_causal_tokenizer(config)
        return model.eval(), tokenizer

    def load_serving_base(self, config: Config, labels: list[str] | None,
                          placement: Placement) -> ServingBase:
        """The base causal LM for serving: always 16/32-bit (`weights_dtype` of the placement),
        also for a QLoRA adapter (its LoRA weights are floating point and apply to the
        de-quantised base the same way), and its tokenizer (pad = EOS when it has none)."""
        note = None
        if config.model.quantization:
            note = (f"adapter trained with model.quantization={config.model.quantization}: "
                    "served on a 16/32-bit base")
            config = config.model_copy(update={"model": config.model.model_copy(
                update={"quantization": None})})
        model = load_causal_model(config, placement=placement)
        tokenizer = load_causal_tokenizer(config)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        return ServingBase(model.eval(), tokenizer, [], note)

    def build_adapters(self, named: list[tuple[str, Config]],
                       placement: Placement) -> list[BuiltModel]:
        return build_causal_adapters(named, placement)

    def load_adapters(self, config: Config, folders: dict[str, Path],
                      placement: Placement) -> tuple[torch.nn.Module, Any]:
        model = attach_adapters(load_causal_model(config, placement=placement), folders)
        first = next(iter(folders.values()))
        tokenizer = load_tokenizer(config.model.name, source=str(first)) \
            if folder_has_tokenizer(first) else load_causal_tokenizer(config)
        return model.eval(), tokenizer

    def trains(self, config: Config) -> bool:
        return config.lora.enabled  # the no-LoRA baseline is the base model, evaluated

    def prepare_training(self, config: Config, placement: Placement) -> None:
        """A named KD teacher (training.loss kd with teacher:), frozen, in eval mode; the
        constraint of eval.generate's answers checked before the run folder is written."""
        if config.eval.generate:
            constraint_spec(config)
        names = {t.teacher for t in config.training.loss if t.type == "kd" and t.teacher}
        if len(names) > 1:
            raise UserError("training.loss: give at most one kd teacher")
        if names:
            teacher = load_causal_model(config, name=names.pop(), placement=placement)
            self.teacher = teacher.requires_grad_(False).eval()

    # ------------------------------------------------------------------ losses
    def training_forward(self, model, unwrapped, batch, labels) -> TrainingOutput:
        """training.loss over the response positions, lm_head a chunk at a time; `scores`
        [batch, seq-1]: the top prediction is right (True where there is no loss)."""
        targets, positions = response_positions(labels)
        with head_inputs(unwrapped) as captured:
            model(**batch, **self.model_kwargs)
        terms = position_terms(self.config.training.loss, labels, positions)
        teacher = None
        if any(t.measure == "kl" for t in terms):
            teacher = self.response_teacher(unwrapped, batch, positions)
        result = response_loss(captured.hidden[:, :-1][positions], targets,
                               OutputHead.of(unwrapped), terms, teacher)
        scores = ~positions
        scores[positions] = result.hits
        parts = result.values if len(result.values) > 1 or "ce" not in result.values else {}
        return TrainingOutput(result.total, parts, scores)

    @torch.no_grad()
    def response_teacher(self, unwrapped, batch, positions) -> Teacher:
        """The KD teacher's hidden states at the response positions, and its head: the named
        teacher, or the model itself with its adapter switched off."""
        if self.teacher is not None:
            with head_inputs(self.teacher) as captured:
                self.teacher(**batch, **self.model_kwargs)
            head = OutputHead.of(self.teacher)
        else:
            with unwrapped.disable_adapter(), head_inputs(unwrapped) as captured:
                unwrapped(**batch, **self.model_kwargs)
            head = OutputHead.of(unwrapped, base=True)
        return Teacher(captured.hidden[:, :-1][positions], head)

    def evaluation_items(self, model, batch, labels):
        """((summed response-token NLL, response tokens), mean NLL) per example."""
        targets, positions = response_positions(labels)
        with head_inputs(model) as captured:
            model(**batch, **self.model_kwargs)
        nll = response_nll(captured.hidden[:, :-1][positions], targets, OutputHead.of(model))
        rows = positions.nonzero()[:, 0]
        sums = torch.zeros(labels.shape[0], device=nll.device).index_add_(0, rows, nll)
        counts = positions.sum(dim=1)
        return [((s, c), s / max(c, 1)) for s, c in zip(sums.tolist(), counts.tolist())]

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

    def correct(self, scores, labels, tolerance):
        """Every response token is the model's top prediction (scores of training_forward)."""
        return scores.all(dim=-1)

    # ------------------------------------------------------------------ evaluation
    def gather(self, logits, batch):
        nll = token_nll(logits, batch["labels"])
        counts = (shifted(logits, batch["labels"])[1] != IGNORE).sum(dim=1)
        return list(zip(nll.sum(dim=1).tolist(), counts.tolist()))

    def example_losses(self, logits, labels):
        return [n / max(c, 1) for n, c in self.gather(logits, {"labels": labels})]

    def metrics(self, predictions, encoded, labels):
        total = sum(n for n, _ in predictions)
        tokens = sum(c for _, c in predictions)
        loss = total / max(tokens, 1)
        return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)),
                "response_tokens": float(tokens)}

    def metric_names(self, config, labels):
        names = ["loss", "perplexity", "response_tokens"]
        if config.eval.generate:
            names += ["generated", "truncated", *(m for suite in config.data.metrics
                                     for m in metrics_of(f"suite:{suite}"))]
        return names

    # ------------------------------------------------------------------ prediction
    def prepare_inputs(self, records, config):
        """`--text` is the user's input: it fills a prompt template with a single field, or is
        the prompt itself; file rows keep all their fields for the template."""
        template = config.data.prompt_template
        fields = {f.split(".")[0].split("[")[0] for f in template_fields(template or "")}
        out = []
        for record in records:
            if "text" not in record or fields <= set(record):
                out.append(record)
            elif len(fields) == 1:
                out.append({**record, next(iter(fields)): record["text"]})
            else:
                raise UserError(f"the adapter's prompt template needs the fields "
                                f"{', '.join(sorted(fields))}: give them as columns of --file")
        if not template:
            out = [{**r, "prompt": r.get("prompt", r.get("text"))} for r in out]
        return out

    def input_fields(self, records):
        template = self.config.data.prompt_template if self.config else None
        if template:
            return sorted({f.split(".")[0].split("[")[0] for f in template_fields(template)})
        return ["messages"] if records and "messages" in records[0] else ["prompt"]

    def answer(self, model, tokenizer, records, config, *, progress=False,
               desc="generate") -> tuple[list[str], list[Generation]]:
        prompts = [self.format.prompt(r, tokenizer) for r in records]
        spec = constraint_spec(config)
        grammar = spec.compile(tokenizer) if spec is not None else None
        generations = generate(model, tokenizer, prompts,
                               Decoding.from_config(config.eval, config.training.seed),
                               constraints=[grammar] * len(prompts),
                               add_special_tokens=not self.format.is_chat(records),
                               progress=progress, desc=desc)
        return prompts, generations

    def gold_text(self, record):
        return self.format.response(record)

    def predict(self, model, tokenizer, records, config, labels, batch_size):
        eval_cfg = config.eval.model_copy(update={"batch_size": batch_size})
        _, generations = self.answer(model, tokenizer, records, config.model_copy(
            update={"eval": eval_cfg}))
        for record, generation in zip(records, generations):
            shown = {k: v for k, v in record.items()
                     if not k.startswith("_") and k != "prompt" and v is not None}
            line = {**shown, **self.render(generation.text, record, None, labels)}
            if generation.complete is not None:  # constrained: False = cut at max_new_tokens
                line["complete"] = generation.complete
            yield line

    def render(self, output, record, feature, labels):
        return {"generated": output}

    # ------------------------------------------------------------------ comparing two models
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
