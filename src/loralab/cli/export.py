"""`loralab export` and `loralab verify`."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

ATOL_HELP = ("largest allowed |logit difference| (default: allclose with atol=rtol=1e-4 for "
             "fp32, see docs/export.md for fp16 / bf16)")


def cmd_export(args: argparse.Namespace) -> int:
    from loralab.export.export_command import ExportRequest, run_export

    return run_export(ExportRequest(
        adapter=Path(args.adapter), fmt=args.format, output=Path(args.output),
        dtype=args.dtype, opset=args.opset, inputs=Path(args.inputs) if args.inputs else None,
        atol=args.atol, force=args.force, overwrite=args.overwrite, command=export_command(args)))


def export_command(args: argparse.Namespace) -> str:
    """The command line that made the export (for the model card and export.json)."""
    words = ["loralab", "export", args.adapter, "--format", args.format, "--output",
             args.output]
    if args.dtype != "fp32":
        words += ["--dtype", args.dtype]
    for option, value in (("--opset", args.opset), ("--inputs", args.inputs),
                          ("--atol", args.atol)):
        if value is not None:
            words += [option, str(value)]
    words += [flag for flag, on in (("--force", args.force), ("--overwrite", args.overwrite))
              if on]
    return shlex.join(words)


def cmd_verify(args: argparse.Namespace) -> int:
    from loralab.export.verify_command import run_verify

    return run_verify(args.export_dir, args.against, args.inputs, args.atol, args.runtime)


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export an adapter: a PEFT folder, a merged model or "
                                      "ONNX, checked against the adapter")
    p.add_argument("adapter", help="adapter folder (lora_* inside a run folder, or plain PEFT)")
    p.add_argument("--format", required=True, metavar="peft|merged|onnx",
                   help="peft: a clean adapter folder; merged: a plain transformers model; "
                        "onnx: the merged model as an ONNX graph")
    p.add_argument("--output", "-o", required=True, help="export folder (new or empty)")
    p.add_argument("--dtype", default="fp32", metavar="fp32|fp16|bf16",
                   help="weights of a merged / onnx export (default fp32; the merge itself "
                        "always runs in fp32)")
    p.add_argument("--opset", type=int, help="ONNX opset (default: the exporter's)")
    p.add_argument("--inputs", help="inputs for the fidelity check: a .txt file (one text a "
                                    "line) or a data file (default: the adapter's validation "
                                    "data, else generated text)")
    p.add_argument("--atol", type=float, help=ATOL_HELP)
    p.add_argument("--force", action="store_true",
                   help="write the export even when it fails the fidelity check (recorded in "
                        "export.json)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a finished export in --output")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("verify", help="check an export against its source adapter")
    p.add_argument("export_dir", help="export folder (merged, onnx or peft)")
    p.add_argument("--against", help="source adapter folder (default: the one export.json "
                                     "names); a plain PEFT adapter works too")
    p.add_argument("--inputs", help="inputs file, as for export")
    p.add_argument("--atol", type=float, help=ATOL_HELP)
    p.add_argument("--runtime", metavar="onnxruntime|torch",
                   help="runtime of the export (default: onnxruntime for ONNX, torch "
                        "otherwise)")
    p.set_defaults(func=cmd_verify)
