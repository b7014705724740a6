"""One base model with many adapters attached: slots, hot attach / detach, and the batch plan.

`MixedEngine` owns one plain transformers model. Attaching an adapter gives it a slot: its
LoRA pairs go into the `MultiLoraLinear` stacks of the layers it targets (wrapping a layer the
first time any adapter targets it) and its saved modules become per-slot copies in a
`SlotModules` (wrapping the module the first time). Detaching zeroes the slot and drops the
copies, but only once no batch in flight still holds it (`SlotTable` refcounts), so a request
never gets another adapter's answer from a reused slot.

Two locks, so that a request's start and end never wait for a forward pass:
- `slot_lock` (short, never held across model work) guards the slot table: a lease's
  acquire / release and detach take only it;
- `lock` (the model lock) is held by forward passes, decode steps and attach. A slot whose
  last reference goes while a batch runs is queued (`pending`) and cleared by the next holder
  of the model lock (before the next batch or attach), so the stacks never change under a
  running forward pass. Reading an adapter's files happens outside both.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from loralab.errors import UserError
from loralab.serving.adapter_weights import AdapterWeights
from loralab.serving.multi_lora import BatchPlan, LoraContext, MultiLoraLinear
from loralab.serving.slot_modules import SlotModules


class SlotTable:
    """Slot numbers (0 = the base model alone) with in-flight reference counts."""

    def __init__(self) -> None:
        self.used: set[int] = set()
        self.refs: dict[int, int] = {}
        self.retiring: set[int] = set()

    def allocate(self) -> int:
        slot = next(s for s in range(1, len(self.used) + 2) if s not in self.used)
        self.used.add(slot)
        return slot

    @property
    def capacity(self) -> int:
        return max(self.used, default=0) + 1

    def acquire(self, slot: int) -> None:
        if slot and (slot not in self.used or slot in self.retiring):
            raise KeyError(slot)
        self.refs[slot] = self.refs.get(slot, 0) + 1

    def release(self, slot: int) -> bool:
        """Drop one reference; True when the slot was retiring and is now free to clear."""
        self.refs[slot] -= 1
        if self.refs[slot] == 0:
            del self.refs[slot]
            return slot in self.retiring
        return False

    def retire(self, slot: int) -> bool:
        """Mark the slot for removal; True when nothing references it (clear it now)."""
        self.retiring.add(slot)
        return not self.refs.get(slot)

    def free(self, slot: int) -> None:
        self.used.discard(slot)
        self.retiring.discard(slot)
        self.refs.pop(slot, None)


def locate(root: nn.Module, path: str) -> tuple[nn.Module, str]:
    """(parent, attribute) of the module at a base-model path, looking through wrappers."""
    node = root
    parts = path.split(".")
    for part in parts[:-1]:
        node = node._modules[part]
        while isinstance(node, (SlotModules, MultiLoraLinear)):
            node = node.default if isinstance(node, SlotModules) else node.base
    leaf = parts[-1]
    child = node._modules[leaf]
    while isinstance(child, SlotModules):
        node, leaf, child = child, "default", child.default
    return node, leaf


class MixedEngine:
    """A base model serving every attached adapter in mixed batches."""

    def __init__(self, model: nn.Module, device: torch.device,
                 required_saved: list[str] | None = None) -> None:
        self.model = model.eval().requires_grad_(False)
        self.device = device
        self.context = LoraContext()
        self.lock = threading.RLock()          # the model: forward passes, attach, clears
        self.slot_lock = threading.Lock()      # the slot table only (leases, detach)
        self.pending: set[int] = set()         # slots free to clear at the next model lock
        self.module_names = {name for name, _ in model.named_modules() if name}
        self.required_saved = list(required_saved or [])   # newly initialised heads
        self.linears: dict[str, MultiLoraLinear] = {}
        self.heads: dict[str, SlotModules] = {}
        self.slots = SlotTable()
        self.adapter_meta: dict[int, dict] = {}              # slot -> rank, target modules

    # ------------------------------------------------------------------ attach / detach
    def check(self, weights: AdapterWeights) -> None:
        """Refuse an adapter this base cannot serve, before touching any stack."""
        for head in self.required_saved:
            if not any(head == s or head.startswith(s + ".") for s in weights.saved):
                raise UserError(f"{weights.path}: the adapter does not save the model's "
                                f"{head!r} module (modules_to_save): the base model has only "
                                "an untrained head there")
        for saved in weights.saved:
            for other in self.heads:
                if saved != other and (saved.startswith(other + ".")
                                       or other.startswith(saved + ".")):
                    raise UserError(f"{weights.path}: saved module {saved!r} overlaps "
                                    f"{other!r} saved by another adapter of this base; serve "
                                    "them from separate servers")

    def attach(self, weights: AdapterWeights) -> int:
        self.check(weights)
        with self.lock:
            self._clear_pending()
            with self.slot_lock:
                slot = self.slots.allocate()
            try:
                capacity = self.slots.capacity
                for linear in self.linears.values():
                    linear.reserve(capacity)
                for module, pair in weights.lora.items():
                    self._linear(module).set_slot(slot, pair.a, pair.b, pair.scaling, capacity)
                for module, params in weights.saved.items():
                    self._head(module).add_copy(slot, params)
            except (ValueError, TypeError) as exc:
                self._clear(slot)
                raise UserError(f"{weights.path}: {exc}") from None
            return slot

    def _linear(self, name: str) -> MultiLoraLinear:
        if name not in self.linears:
            parent, leaf = locate(self.model, name)
            wrapped = MultiLoraLinear(parent._modules[leaf], self.context)
            wrapped.reserve(self.slots.capacity)
            setattr(parent, leaf, wrapped)
            self.linears[name] = wrapped
        return self.linears[name]

    def _head(self, name: str) -> SlotModules:
        if name not in self.heads:
            parent, leaf = locate(self.model, name)
            wrapped = SlotModules(parent._modules[leaf], self.context)
            setattr(parent, leaf, wrapped)
            self.heads[name] = wrapped
        return self.heads[name]

    def _clear(self, slot: int) -> None:
        """Zero a slot's stacks and free it (the caller holds the model lock)."""
        for linear in self.linears.values():
            linear.clear_slot(slot)
        for head in self.heads.values():
            head.remove_copy(slot)
        with self.slot_lock:
            self.slots.free(slot)
        self.adapter_meta.pop(slot, None)

    def _clear_pending(self) -> None:
        with self.slot_lock:
            ready, self.pending = self.pending, set()
        for slot in ready:
            self._clear(slot)

    def _queue_clear(self, slot: int) -> None:
        """Clear now when no batch runs, else at the next holder of the model lock."""
        with self.slot_lock:
            self.pending.add(slot)
        if self.lock.acquire(blocking=False):
            try:
                self._clear_pending()
            finally:
                self.lock.release()

    def acquire(self, slot: int) -> None:
        with self.slot_lock:
            self.slots.acquire(slot)

    def release(self, slot: int) -> None:
        with self.slot_lock:
            clear = self.slots.release(slot)
        if clear:
            self._queue_clear(slot)

    def detach(self, slot: int) -> None:
        """Remove an adapter now, or when the last batch holding its slot finishes."""
        with self.slot_lock:
            clear = self.slots.retire(slot)
        if clear:
            self._queue_clear(slot)

    # ------------------------------------------------------------------ running
    @contextmanager
    def rows(self, slot_list: list[int]) -> Iterator[BatchPlan]:
        """Hold the lock and set the per-row slots for the forward passes inside."""
        with self.lock, torch.inference_mode():
            self._clear_pending()
            plan = BatchPlan.of(slot_list, self.device)
            with self.context.use(plan):
                yield plan
