"""Does an export answer like its source? Figures and tolerances.

Figures (names and directions from loralab.metrics.metric_registry, producer "fidelity"):
    max_abs_diff / mean_abs_diff   |logit difference| over the compared positions (padding
                                   excluded for per-token outputs)
    the task's agreement figures   label / entity / next-token agreement %, regression's
                                   max value difference (Task.agreement)
    generation_match               causal LMs: prompts whose greedy continuation is equal

A logit passes when |Δ| <= atol + rtol * scale, where scale is the largest |reference logit| of
its position (torch.allclose's rule, measured against the logit vector's size: a logit near 0
is a sum of terms as large as its neighbours', and carries their rounding). A regression head's
value is its logit, so the same rule checks it. Agreement figures must reach min_agreement.
`--atol X` replaces the rule by a plain |Δ| <= X (rtol 0). Defaults per export dtype:
    fp32   atol 1e-4, rtol 1e-4, agreement 100 %, every greedy continuation equal: PEFT's own
           merge tests compare merged and unmerged logits with allclose(atol=1e-4, rtol=1e-4);
           fp32 re-orderings (merged matmuls, ONNX Runtime's kernels) stay inside it.
    fp16   atol 5e-2, rtol 1e-2, agreement >= 99 %: fp16 keeps ~3 significant digits, so after
           a dozen layers logits move by 1e-3..1e-2 of their size, and a near-tie may flip.
    bf16   atol 2.5e-1, rtol 5e-2, agreement >= 98 %: bf16 keeps ~2 digits, 8x fp16's rounding.
    16-bit greedy continuations are reported, not required equal: one flipped near-tie token
    changes every token after it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch

from loralab.export.outputs import ModelOutputs
from loralab.metrics.metric_registry import display_name, greater_is_better
from loralab.tasks import Task


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float
    min_agreement: float         # percent
    continuations_equal: bool


DEFAULT_TOLERANCE = {
    "fp32": Tolerance(1e-4, 1e-4, 100.0, True),
    "fp16": Tolerance(5e-2, 1e-2, 99.0, False),
    "bf16": Tolerance(2.5e-1, 5e-2, 98.0, False),
}


def tolerance_for(dtype: str, atol: float | None) -> Tolerance:
    default = DEFAULT_TOLERANCE[dtype]
    return default if atol is None else replace(default, atol=atol, rtol=0.0)


@dataclass
class FidelityReport:
    figures: dict[str, float]
    tolerance: Tolerance
    failures: list[str] = field(default_factory=list)
    mismatched: list[dict[str, Any]] = field(default_factory=list)  # differing continuations

    @property
    def passed(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "figures": self.figures,
                "tolerance": asdict(self.tolerance), "failures": self.failures,
                "mismatched_generations": self.mismatched}

    def summary(self) -> str:
        return ", ".join(f"{display_name(k)} {format_figure(k, v)}"
                         for k, v in self.figures.items())


def format_figure(name: str, value: float) -> str:
    return f"{value:.2f}%" if greater_is_better(name) else f"{value:.2e}"


def logit_gaps(reference: list[torch.Tensor], candidate: list[torch.Tensor],
               batches: list[dict[str, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(|Δ|, scale) of every compared logit, the scale being the largest |reference logit| of
    its position; per-token outputs only where attention_mask is 1."""
    gaps, sizes = [], []
    for ref, cand, batch in zip(reference, candidate, batches):
        gap = (ref - cand).abs()
        size = ref.abs().amax(dim=-1, keepdim=True).expand_as(ref)
        if gap.dim() == 3 and "attention_mask" in batch:
            keep = batch["attention_mask"].bool()
            gap, size = gap[keep], size[keep]
        gaps.append(gap.reshape(-1))
        sizes.append(size.reshape(-1))
    if not gaps:
        return torch.zeros(1), torch.zeros(1)
    return torch.cat(gaps), torch.cat(sizes)


def compare(reference: ModelOutputs, candidate: ModelOutputs, task: Task,
            labels: list[str] | None, batches: list[dict[str, torch.Tensor]],
            tolerance: Tolerance, tokenizer: Any = None) -> FidelityReport:
    gaps, sizes = logit_gaps(reference.logits, candidate.logits, batches)
    figures = {"max_abs_diff": float(gaps.max()), "mean_abs_diff": float(gaps.mean())}
    figures.update(task.agreement(reference.decisions, candidate.decisions, labels))
    mismatched = []
    if reference.continuations:
        pairs = list(zip(reference.continuations, candidate.continuations))
        equal = sum(r == c for r, c in pairs)
        figures["generation_match"] = 100.0 * equal / len(pairs)
        mismatched = [{"prompt": i, "reference": decode(tokenizer, r),
                       "export": decode(tokenizer, c)}
                      for i, (r, c) in enumerate(pairs) if r != c]
    report = FidelityReport(figures, tolerance, mismatched=mismatched)
    report.failures = logit_failures(gaps, sizes, tolerance) + figure_failures(figures,
                                                                                tolerance)
    return report


def logit_failures(gaps: torch.Tensor, sizes: torch.Tensor, tolerance: Tolerance) -> list[str]:
    allowed = tolerance.atol + tolerance.rtol * sizes
    outside = ~(gaps <= allowed)  # NaN counts as outside
    if not outside.any():
        return []
    worst = int(torch.nan_to_num(gaps - allowed, nan=float("inf")).argmax())
    return [f"{int(outside.sum())} of {gaps.numel()} logits differ by more than atol "
            f"{tolerance.atol:g} + rtol {tolerance.rtol:g} x the position's largest |logit| "
            f"(worst: |Δ| {float(gaps[worst]):.2e} where that is {float(sizes[worst]):.3g})"]


def figure_failures(figures: dict[str, float], tolerance: Tolerance) -> list[str]:
    out = []
    for name, value in figures.items():
        if name == "generation_match":
            if tolerance.continuations_equal and value < 100.0:
                out.append(f"{display_name(name)} {value:.2f}% < 100% (fp32 continuations "
                           "must be equal)")
        elif greater_is_better(name) and not value >= tolerance.min_agreement:
            out.append(f"{display_name(name)} {value:.2f}% < {tolerance.min_agreement:g}%")
    return out


def decode(tokenizer: Any, ids: list[int]) -> str | list[int]:
    return tokenizer.decode(ids) if tokenizer is not None else ids
