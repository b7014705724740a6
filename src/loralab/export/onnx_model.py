"""An ONNX Runtime session that is called like a transformers model, so `loralab predict`, the
fidelity check and `verify` run an ONNX export through the same code as a PyTorch model.

    model(input_ids=..., attention_mask=...).logits     a torch tensor (fp32 on the CPU)
    model.generate(input_ids, attention_mask, max_new_tokens=...)   greedy only; each step is
        one full right-padded forward pass of every row (the graph has no KV cache)
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from loralab.errors import UserError


class OnnxModel(torch.nn.Module):
    runtime = "onnxruntime"

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime

        super().__init__()
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(path), options,
                                                    providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        # a zero-size parameter: callers that ask a model for its device find the CPU
        self.anchor = torch.nn.Parameter(torch.empty(0), requires_grad=False)

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def forward(self, input_ids: torch.Tensor, **inputs: Any) -> SimpleNamespace:
        given = {"input_ids": input_ids, **inputs}
        feeds = {}
        for name in self.input_names:
            value = given.get(name)
            if value is None and name == "token_type_ids":
                value = torch.zeros_like(input_ids)
            if value is None:
                raise UserError(f"the ONNX graph needs the input {name!r}, which the tokenizer "
                                "did not give")
            feeds[name] = value.detach().cpu().to(torch.int64).numpy()
        logits = self.session.run(["logits"], feeds)[0]
        return SimpleNamespace(logits=torch.from_numpy(logits).float())

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 max_new_tokens: int = 32, eos_token_id: int | list[int] | None = None,
                 pad_token_id: int | None = None, do_sample: bool = False,
                 **_ignored: Any) -> torch.Tensor:
        """Greedy continuation of every (left-padded) row; returns the rows followed by their
        new tokens, like transformers' generate (finished rows padded with pad_token_id)."""
        if do_sample:
            raise UserError("an ONNX export generates greedily only; set eval.do_sample: false")
        mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
        stops = set(eos_token_id if isinstance(eos_token_id, (list, tuple)) else
                    [eos_token_id]) - {None}
        pad = pad_token_id if pad_token_id is not None else min(stops, default=0)
        rows = [ids[keep].tolist() for ids, keep in zip(input_ids, mask.bool())]
        starts = [len(r) for r in rows]
        done = [False] * len(rows)
        for _ in range(max_new_tokens):
            if all(done):
                break
            for i, token in enumerate(self.next_tokens(rows, pad)):
                if not done[i]:
                    rows[i].append(token)
            done = [d or r[-1] in stops for d, r in zip(done, rows)]
        new = [r[s:] + [pad] * (max_new_tokens - len(r) + s) for r, s in zip(rows, starts)]
        return torch.cat([input_ids, torch.tensor(new, dtype=input_ids.dtype)], dim=1)

    def next_tokens(self, rows: list[list[int]], pad: int) -> list[int]:
        """The most likely next token of each row: one right-padded pass (no KV cache)."""
        width = max(len(r) for r in rows)
        ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], dtype=torch.long)
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
        logits = self(input_ids=ids, attention_mask=mask).logits
        return [int(logits[i, len(r) - 1].argmax()) for i, r in enumerate(rows)]
