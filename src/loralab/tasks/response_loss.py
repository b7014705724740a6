"""Loss terms over response positions, through the output layer a chunk at a time.

Only the positions that carry a loss (response tokens) go through lm_head, and never all at
once: with a 49k vocabulary, 8 × 448 positions of fp32 logits are 0.7 GB, and the plain path
keeps them, their softmax and their gradient alive together. Here (Liger's fused linear
cross-entropy, in plain PyTorch, CPU and GPU alike) `ChunkedHeadLoss` computes in its forward
pass, for one chunk of positions after another, the chunk's logits, its loss terms and the
gradient of those terms with respect to the chunk's hidden states (and any trainable parameter
of the output layer); it keeps only those gradients (positions × hidden) and scales them by
the incoming gradient in backward. Peak memory is one chunk's logits, whatever the batch; the
matmuls are the plain path's, on response positions only, with no recomputation (a per-chunk
torch.utils.checkpoint would compute each chunk's logits twice; see benchmarks/causal_memory.py
`loss`).

A term is a weighted sum over positions, Σ_p coef[p] · measure(p), where measure is the
token's negative log-likelihood (`nll`) or KL(teacher ‖ student) at a temperature (`kl`):
`ce` is coef = 1/N, `first_k_ce` coef = [p among each example's first k] / N_k, `kd`
coef = T² / N.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from loralab.models.head import OutputHead
from loralab.tasks.sft_format import IGNORE

CHUNK_BYTES = 32 * 2**20  # fp32 logits of one chunk: 170 positions of a 49k vocabulary


def response_positions(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(targets [N], positions [batch, seq-1] bool): hidden state t predicts label t+1, and
    only positions whose next label is not ignored carry a loss."""
    shifted = labels[:, 1:]
    positions = shifted != IGNORE
    return shifted[positions], positions


def first_k_mask(labels: torch.Tensor, k: int) -> torch.Tensor:
    """True on the first k response tokens of each example (of each packed segment too)."""
    response = labels != IGNORE
    starts = response & ~F.pad(response, (1, 0))[:, :-1]
    seen = torch.cumsum(response.long(), dim=1)           # response tokens so far, inclusive
    offset = torch.cummax(starts.long() * (seen - 1), dim=1).values
    return response & (seen - 1 - offset < k)


@dataclass(frozen=True)
class PositionTerm:
    name: str
    measure: str                 # "nll" or "kl"
    coef: torch.Tensor           # [N] per response position
    weight: float = 1.0
    temperature: float = 1.0

    @property
    def key(self) -> str:
        return "nll" if self.measure == "nll" else f"kl@{self.temperature:g}"


def position_terms(loss: list[Any], labels: torch.Tensor,
                   positions: torch.Tensor) -> list[PositionTerm]:
    """training.loss as PositionTerms over the response positions of `labels` (the batch's
    labels; `positions` from response_positions); no term given is `ce`."""
    count = positions.sum().clamp(min=1)
    ones = torch.ones(int(positions.sum()), device=labels.device)
    terms = []
    for term in loss or [None]:
        kind = term.type if term is not None else "ce"
        weight = term.weight if term is not None else 1.0
        if kind == "ce":
            terms.append(PositionTerm(kind, "nll", ones / count, weight))
        elif kind == "first_k_ce":
            first = first_k_mask(labels[:, 1:], term.k)[positions].float()
            terms.append(PositionTerm(kind, "nll", first / first.sum().clamp(min=1), weight))
        else:
            scale = term.temperature ** 2
            terms.append(PositionTerm(kind, "kl", ones * scale / count, weight,
                                      term.temperature))
    return terms


@dataclass
class Teacher:
    hidden: torch.Tensor         # [N, hidden] at the same response positions, no gradient
    head: OutputHead


@dataclass
class ResponseLoss:
    total: torch.Tensor                      # Σ_terms weight · value, differentiable
    values: dict[str, torch.Tensor]          # each term's unweighted value, detached
    hits: torch.Tensor                       # [N] bool: the top logit is the target


@dataclass
class _Plan:
    head: OutputHead
    targets: torch.Tensor
    terms: list[PositionTerm]
    teacher: Teacher | None
    chunk: int
    keys: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.keys = sorted({t.key for t in self.terms} | {"nll"})

    def measures(self, hidden: torch.Tensor, start: int, end: int
                 ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Each measure at positions start:end, and whether the top logit is the target."""
        logits = self.head(hidden)
        targets = self.targets[start:end]
        out = {"nll": F.cross_entropy(logits, targets, reduction="none")}
        kl_keys = [k for k in self.keys if k.startswith("kl@")]
        if kl_keys:
            with torch.no_grad():
                teacher = self.teacher.head(self.teacher.hidden[start:end])
            for key in kl_keys:
                temperature = float(key[3:])
                student = F.log_softmax(logits / temperature, dim=-1)
                target = F.log_softmax(teacher / temperature, dim=-1)
                out[key] = (target.exp() * (target - student)).sum(-1)
        return out, logits.detach().argmax(-1) == targets

    def weighted(self, measures: dict[str, torch.Tensor], start: int, end: int
                 ) -> torch.Tensor:
        return sum(t.weight * (t.coef[start:end] * measures[t.key]).sum() for t in self.terms)


class ChunkedHeadLoss(torch.autograd.Function):
    """(hidden [N, H], plan, *trainable head parameters) -> (total, measures [K, N], hits)."""

    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, plan: _Plan, *params: torch.Tensor):
        count = hidden.shape[0]
        grad_hidden = torch.zeros_like(hidden)
        grad_params = [torch.zeros_like(p) for p in params]
        measures = torch.zeros(len(plan.keys), count, device=hidden.device)
        hits = torch.zeros(count, dtype=torch.bool, device=hidden.device)
        total = torch.zeros((), device=hidden.device)
        for start in range(0, count, plan.chunk):
            end = min(start + plan.chunk, count)
            piece = hidden[start:end].detach().requires_grad_(True)
            with torch.enable_grad():
                values, hits[start:end] = plan.measures(piece, start, end)
                loss = plan.weighted(values, start, end)
            grads = torch.autograd.grad(loss, [piece, *params], allow_unused=True)
            grad_hidden[start:end] = grads[0]
            for buffer, grad in zip(grad_params, grads[1:]):
                if grad is not None:
                    buffer += grad
            total += loss.detach().float()
            for row, key in enumerate(plan.keys):
                measures[row, start:end] = values[key].detach()
        ctx.save_for_backward(grad_hidden, *grad_params)
        ctx.mark_non_differentiable(measures, hits)
        return total, measures, hits

    @staticmethod
    def backward(ctx: Any, grad_total: torch.Tensor, *_: Any):
        grad_hidden, *grad_params = ctx.saved_tensors
        scaled = [g * grad_total.to(g.dtype) for g in (grad_hidden, *grad_params)]
        return scaled[0], None, *scaled[1:]


def chunk_rows(vocab_size: int) -> int:
    """Positions per chunk: about CHUNK_BYTES of fp32 logits."""
    return max(1, CHUNK_BYTES // (4 * vocab_size))


def response_loss(hidden: torch.Tensor, targets: torch.Tensor, head: OutputHead,
                  terms: list[PositionTerm], teacher: Teacher | None = None, *,
                  chunk: int | None = None) -> ResponseLoss:
    """The terms over N response positions: `hidden` [N, H] (the states that predict
    `targets` [N]) through `head`, `chunk` positions at a time (default: chunk_rows)."""
    plan = _Plan(head, targets, terms, teacher, chunk or chunk_rows(head.vocab_size))
    if hidden.shape[0] == 0:
        zero = hidden.sum() * 0.0
        return ResponseLoss(zero, {t.name: zero.detach() for t in terms},
                            torch.zeros(0, dtype=torch.bool, device=hidden.device))
    total, measures, hits = ChunkedHeadLoss.apply(hidden, plan, *head.trainable())
    rows = {key: measures[i] for i, key in enumerate(plan.keys)}
    values = {t.name: (t.coef * rows[t.key]).sum() for t in terms}
    return ResponseLoss(total, values, hits)


@torch.no_grad()
def response_nll(hidden: torch.Tensor, targets: torch.Tensor, head: OutputHead, *,
                 chunk: int | None = None) -> torch.Tensor:
    """Per-position negative log-likelihood [N], chunk by chunk, without a graph."""
    plan = _Plan(head, targets, [], None, chunk or chunk_rows(head.vocab_size))
    out = torch.empty(hidden.shape[0], device=hidden.device)
    for start in range(0, hidden.shape[0], plan.chunk):
        end = min(start + plan.chunk, hidden.shape[0])
        out[start:end] = plan.measures(hidden[start:end], start, end)[0]["nll"]
    return out
