"""Per-adapter copies of whole modules (PEFT's `modules_to_save`): heads, poolers, unfrozen layers.

A `SlotModules` stands where the base module stood. It holds the base module (`default`) and
one trained copy per adapter slot that saved this module. In a mixed batch it runs each slot's
copy on that slot's rows and the base module on every other row, then stitches the rows back
in order. Outputs of different widths (classifiers with 2, 3 or 1 outputs) are zero-padded to
the widest; the engine slices each row back to its own adapter's width. This loop runs over
the adapter groups present in the batch, at the head only; the encoder body runs once.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from loralab.serving.multi_lora import BatchPlan, LoraContext, MultiLoraLinear


def rows_of(value: Any, index: torch.Tensor, batch: int) -> Any:
    """The selected rows of every batch-sized tensor inside `value` (tuples and dicts too)."""
    if isinstance(value, torch.Tensor):
        return value.index_select(0, index) if value.dim() and value.shape[0] == batch else value
    if isinstance(value, tuple):
        return tuple(rows_of(v, index, batch) for v in value)
    if isinstance(value, list):
        return [rows_of(v, index, batch) for v in value]
    if isinstance(value, dict):
        return {k: rows_of(v, index, batch) for k, v in value.items()}
    return value


def stitch(parts: list[tuple[torch.Tensor, Any]], batch: int) -> Any:
    """Outputs computed on row subsets -> one output for the whole batch (last dim padded)."""
    first = parts[0][1]
    if isinstance(first, torch.Tensor):
        width = max(out.shape[-1] for _, out in parts) if first.dim() > 1 else None
        shape = (batch, *first.shape[1:-1], width) if width is not None else (batch,)
        result = first.new_zeros(shape)
        for index, out in parts:
            if width is None:
                result[index] = out
            else:
                result[index, ..., : out.shape[-1]] = out
        return result
    if isinstance(first, tuple):
        return tuple(stitch([(i, out[k]) for i, out in parts], batch)
                     for k in range(len(first)))
    if first is None:
        return None
    raise TypeError(f"cannot combine per-adapter outputs of type {type(first).__name__}")


def pristine_copy(module: nn.Module) -> nn.Module:
    """A deep copy of `module` with every MultiLoraLinear / SlotModules inside unwrapped to its
    base module (an adapter's saved copy of a module carries no other adapter's weights)."""
    clone = copy.deepcopy(module)
    for name, child in list(clone.named_modules()):
        if isinstance(child, MultiLoraLinear):
            set_submodule(clone, name, child.base)
        elif isinstance(child, SlotModules):
            set_submodule(clone, name, child.default)
    return clone


def set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, leaf = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, leaf, module)


class SlotModules(nn.Module):
    """The base module plus per-slot trained copies of it, chosen per row."""

    def __init__(self, default: nn.Module, context: LoraContext) -> None:
        super().__init__()
        self.default = default
        self.context = context
        self.copies = nn.ModuleDict()

    def add_copy(self, slot: int, params: dict[str, torch.Tensor]) -> None:
        """A copy of the base module carrying the adapter's saved parameters (shapes may
        differ from the base module's, e.g. a classifier with another number of labels)."""
        clone = pristine_copy(self.default)
        own = dict(clone.named_parameters())
        own.update(dict(clone.named_buffers()))
        missing = sorted(n for n, _ in clone.named_parameters() if n not in params)
        if missing:
            raise ValueError(f"the saved module lacks {', '.join(missing[:5])}")
        for name, value in params.items():
            if name not in own:
                raise ValueError(f"the saved module has {name!r}, which the base model's "
                                 "module does not")
            owner_name, _, leaf = name.rpartition(".")
            owner = clone.get_submodule(owner_name) if owner_name else clone
            tensor = value.to(device=own[name].device, dtype=own[name].dtype)
            if isinstance(own[name], nn.Parameter):
                setattr(owner, leaf, nn.Parameter(tensor, requires_grad=False))
                if isinstance(owner, nn.Linear) and leaf == "weight":
                    owner.out_features, owner.in_features = tensor.shape
            else:
                owner.register_buffer(leaf, tensor)
        self.copies[str(slot)] = clone.eval()

    def remove_copy(self, slot: int) -> None:
        if str(slot) in self.copies:
            del self.copies[str(slot)]

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        plan = self.context.plan
        mine = sorted(s for s in plan.slot_set if str(s) in self.copies) if plan else []
        if not mine:
            return self.default(*args, **kwargs)
        if len(mine) == 1 and plan.single is not None:   # the whole batch is one adapter's
            return self.copies[str(mine[0])](*args, **kwargs)
        parts = []
        device = plan.slots.device
        for slot in mine:
            parts.append(self._run(self.copies[str(slot)], plan, plan.rows_of({slot}),
                                   device, args, kwargs))
        rest = plan.rows_of(set(plan.slot_set) - set(mine))
        if rest:
            parts.append(self._run(self.default, plan, rest, device, args, kwargs))
        return stitch(parts, plan.size)

    def _run(self, module: nn.Module, plan: BatchPlan, rows: list[int], device: torch.device,
             args: tuple, kwargs: dict) -> tuple[torch.Tensor, Any]:
        index = torch.tensor(rows, dtype=torch.long, device=device)
        sub_args = rows_of(args, index, plan.size)
        sub_kwargs = rows_of(kwargs, index, plan.size)
        with self.context.use(plan.subset(rows)):   # LoRA layers inside see only these rows
            return index, module(*sub_args, **sub_kwargs)
