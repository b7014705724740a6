"""The `loralab` command: a table from sub-command to a plain function.

User errors (bad config, bad data, bad arguments) print one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import errno
import sys
from collections.abc import Callable

from loralab.data_export import add_commands as add_data_commands
from loralab.errors import UserError
from loralab.export.cli_args import add_commands as add_export_commands
from loralab.quiet import quiet_libraries
from loralab.release_cli import add_commands as add_release_commands
from loralab.serving.cli_args import add_commands as add_serving_commands

EXIT_USER_ERROR = 2
FILESYSTEM_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                     errno.EFBIG, errno.ENOTDIR, errno.EISDIR}


def cmd_train(args: argparse.Namespace) -> int:
    from loralab.commands import run_train

    return run_train(args.config, args.set, args.output, overwrite=args.overwrite,
                     resume=args.resume, progress=not args.no_progress,
                     set_from=args.set_from, data=args.data)


def cmd_eval(args: argparse.Namespace) -> int:
    from loralab.commands import run_eval

    return run_eval(args.adapter, args.config, args.set, args.output, args.split,
                    progress=not args.no_progress, baseline=args.baseline,
                    base_model=args.model, adapter_name=args.adapter_name,
                    all_adapters=args.all_adapters, set_from=args.set_from)


def cmd_predict(args: argparse.Namespace) -> int:
    from loralab.commands import run_predict

    return run_predict(args.adapter, args.text, args.text_pair, args.file, args.batch_size,
                       adapter_name=args.adapter_name)


def cmd_demo(args: argparse.Namespace) -> int:
    from loralab.demo import run_demo

    return run_demo(args.output, args.set, progress=not args.no_progress)


def cmd_config_show(args: argparse.Namespace) -> int:
    from loralab.config import dump_config, load_config

    print(dump_config(load_config(args.config, args.set, set_from=args.set_from)), end="")
    return 0


def cmd_data_synth(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.n < 10:
        raise UserError("--n must be at least 10 (train and eval both need rows)")
    if not 0 < args.eval_fraction < 1:
        raise UserError("--eval-fraction must be between 0 and 1")
    if args.kind == "multiple-choice":
        from loralab.data.synth_mc import write_multiple_choice_dataset

        info = write_multiple_choice_dataset(Path(args.out), args.n, args.seed,
                                             eval_fraction=args.eval_fraction)
        print(f"wrote {info['n_train']} train + {info['n_eval']} eval questions in "
              f"{', '.join(info['categories'])} -> {args.out}")
        return 0
    from loralab.data.synth_json import write_json_extraction_dataset

    info = write_json_extraction_dataset(Path(args.out), args.n, args.seed,
                                         eval_fraction=args.eval_fraction)
    print(f"wrote {info['n_train']} train + {info['n_eval']} eval rows over "
          f"{len(info['intents'])} intents and schema.json -> {args.out}")
    return 0


def cmd_grid(args: argparse.Namespace) -> int:
    from loralab.experiments.grid_command import run_grid

    return run_grid(args.grid, args.output, args.set, dry_run=args.dry_run, smoke=args.smoke,
                    jobs=args.jobs, shard=args.shard, backend=args.backend,
                    address=args.address, retry_failed=args.retry_failed)


def cmd_runs_list(args: argparse.Namespace) -> int:
    from loralab.experiments.runs_command import list_runs

    return list_runs(args.dir, args.where, args.sort, args.json)


def cmd_runs_show(args: argparse.Namespace) -> int:
    from loralab.experiments.runs_command import show_run

    return show_run(args.run, args.dir)


def cmd_runs_reindex(args: argparse.Namespace) -> int:
    from loralab.experiments.runs_command import reindex_runs

    return reindex_runs(args.dir)


def cmd_compare(args: argparse.Namespace) -> int:
    from loralab.experiments.compare_command import compare

    return compare(args.dir, args.output, args.metric, args.group_by, args.all)


def add_experiment_commands(sub) -> None:
    p = sub.add_parser("grid", help="run a grid / sweep of configs from one YAML file")
    p.add_argument("grid", help="grid file (base: + grid:/zip:/variants:/models:/datasets:...) "
                                "or a config with an inline grid: section")
    p.add_argument("--output", "-o", help="grid folder (default: runs/<grid file name>)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key in every run (repeatable)")
    p.add_argument("--dry-run", action="store_true",
                   help="list every run with its id and its differences from the base config")
    p.add_argument("--smoke", action="store_true",
                   help="the same grid on a few samples and one epoch (the grid's smoke: keys)")
    p.add_argument("--jobs", "-j", type=positive_int, default=1,
                   help="local runs at once (default 1)")
    p.add_argument("--shard", metavar="I/N",
                   help="run only the I-th of N slices (0-based), e.g. $SLURM_ARRAY_TASK_ID/4")
    p.add_argument("--backend", choices=["local", "ray"], default="local")
    p.add_argument("--address", help="Ray cluster address (default: start a local Ray)")
    p.add_argument("--retry-failed", action="store_true", help="run failed runs again")
    p.set_defaults(func=cmd_grid)

    p = sub.add_parser("runs", help="query a grid folder's results index")
    runs_sub = p.add_subparsers(dest="runs_command", required=True)
    q = runs_sub.add_parser("list", help="one line per run")
    q.add_argument("dir", help="grid folder")
    q.add_argument("--where", action="append", default=[], metavar="COND",
                   help="filter, e.g. 'lora.r>=8', 'status=failed', 'f1>0.85' (repeatable)")
    q.add_argument("--sort", help="column, metric or config key (metrics: best first)")
    q.add_argument("--json", action="store_true", help="one JSON object per line")
    q.set_defaults(func=cmd_runs_list)
    q = runs_sub.add_parser("show", help="everything about one run")
    q.add_argument("run", help="run folder, or a run id / id prefix / name with --dir")
    q.add_argument("--dir", help="grid folder whose index to search")
    q.set_defaults(func=cmd_runs_show)
    q = runs_sub.add_parser("reindex", help="rebuild the index from the run folders")
    q.add_argument("dir", help="grid folder")
    q.set_defaults(func=cmd_runs_reindex)

    p = sub.add_parser("compare", help="summary tables, best config, plots and report.html")
    p.add_argument("dir", help="grid folder")
    p.add_argument("--metric", help="metric to rank by (default: each run's metric_for_best)")
    p.add_argument("--group-by", default="model,dataset",
                   help="comma-separated: model, dataset or config keys (default model,dataset)")
    p.add_argument("--output", "-o", help="report folder (default: the grid folder)")
    p.add_argument("--all", action="store_true",
                   help="include runs of earlier versions of the grid in this folder")
    p.set_defaults(func=cmd_compare)


def _add_common(parser: argparse.ArgumentParser, *, config_positional: bool) -> None:
    if config_positional:
        parser.add_argument("config", nargs="?", help="YAML config file (default: the "
                                                      "built-in defaults, with --set on top)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set training.epochs=1 (repeatable)")


def add_set_from(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set-from", action="append", default=[], metavar="FILE:KEY",
                        help="apply a YAML mapping of KEY: VALUE overrides, e.g. "
                             "params.yaml:profiles.smoke.train (repeatable; before --set)")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="loralab", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_train, _add_eval, _add_predict, _add_demo, add_experiment_commands,
                add_release_commands, add_serving_commands, add_export_commands,
                _add_data, _add_config):
        add(sub)
    return parser


def _add_train(sub: argparse._SubParsersAction) -> None:
    """`loralab train`"""
    p = sub.add_parser("train", help="train a LoRA adapter (or several: adapters:) from a "
                                     "YAML config")
    _add_common(p, config_positional=True)
    add_set_from(p)
    p.add_argument("--data", metavar="DIR", help="read the data (every adapter's) from the "
                                                 "files `loralab data export` wrote to DIR")
    p.add_argument("--output", "-o", help="run folder (default: runs/<name>-<time>)")
    p.add_argument("--overwrite", action="store_true", help="replace a finished run folder")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from the checkpoint in --output")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=cmd_train)


def _add_eval(sub: argparse._SubParsersAction) -> None:
    """`loralab eval`"""
    p = sub.add_parser("eval", help="evaluate an adapter folder (or a base LM) on a data split")
    p.add_argument("adapter", nargs="?", help="adapter folder (lora_* inside a run folder), "
                                              "or a multi-adapter folder / run")
    p.add_argument("--adapter", dest="adapter_name", metavar="NAME",
                   help="the adapter of a multi-adapter folder to evaluate")
    p.add_argument("--all-adapters", action="store_true",
                   help="evaluate every adapter of a multi-adapter folder (the base model "
                        "loaded once), each on its own data; with --output also one flat "
                        "DIR/metrics.json")
    p.add_argument("--model", help="evaluate this causal LM as it is, without an adapter "
                                   "(needs --config for the data and metrics)")
    p.add_argument("--baseline", action="store_true",
                   help="causal LMs: also evaluate the base model (adapter off) on the same "
                        "examples; writes baseline_results.json, lora_results.json, "
                        "comparison.md")
    p.add_argument("--config", help="config whose data section to use (default: the "
                                    "adapter's own training config)")
    _add_common(p, config_positional=False)
    add_set_from(p)
    p.add_argument("--split", default="validation", choices=["train", "validation", "test"])
    p.add_argument("--output", "-o", help="folder for the result files")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=cmd_eval)


def _add_predict(sub: argparse._SubParsersAction) -> None:
    """`loralab predict`"""
    p = sub.add_parser("predict", help="predict with an adapter; one JSON line per input")
    p.add_argument("adapter", help="adapter folder, a merged / ONNX export folder, or a "
                                   "multi-adapter folder / run with --adapter")
    p.add_argument("--adapter", dest="adapter_name", metavar="NAME",
                   help="the adapter of a multi-adapter folder to predict with")
    p.add_argument("--text", action="append", default=[], help="input text (repeatable)")
    p.add_argument("--text-pair", action="append", default=[],
                   help="second text for pair tasks, one per --text")
    p.add_argument("--file", help="JSONL/CSV/TSV with a text column (and text_pair), "
                                  "or a .txt file with one text per line")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.set_defaults(func=cmd_predict)


def _add_demo(sub: argparse._SubParsersAction) -> None:
    """`loralab demo`"""
    p = sub.add_parser("demo", help="train and evaluate the built-in default, offline")
    _add_common(p, config_positional=False)
    p.add_argument("--output", "-o", default="runs/demo", help="run folder")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=cmd_demo)


def _add_data(sub: argparse._SubParsersAction) -> None:
    """`loralab data synth` and `loralab data export`"""
    p = sub.add_parser("data", help="data utilities")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    synth = data_sub.add_parser("synth", help="write a synthetic dataset")
    synth.add_argument("kind", choices=["json-extraction", "multiple-choice"],
                       help="json-extraction: user messages -> intent + entities as JSON; "
                            "multiple-choice: questions in three subjects (specialists)")
    synth.add_argument("--n", type=int, default=2000, help="rows in all (default 2000)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--eval-fraction", type=float, default=0.1,
                       help="share of rows in eval.jsonl (default 0.1)")
    synth.add_argument("--out", required=True, help="folder for train.jsonl, eval.jsonl, "
                                                    "schema.json")
    synth.set_defaults(func=cmd_data_synth)
    add_data_commands(data_sub)


def _add_config(sub: argparse._SubParsersAction) -> None:
    """`loralab config show`"""
    p = sub.add_parser("config", help="config utilities")
    config_sub = p.add_subparsers(dest="config_command", required=True)
    show = config_sub.add_parser("show", help="print the resolved config")
    _add_common(show, config_positional=True)
    add_set_from(show)
    show.set_defaults(func=cmd_config_show)


def _version() -> str:
    from loralab import __version__

    return f"loralab {__version__}"


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (the message names the value)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


class Parser(argparse.ArgumentParser):
    """argparse errors as loralab's one line (and exit code 2)."""

    def error(self, message: str) -> None:
        command = self.prog.removeprefix("loralab").strip()  # "grid" for `loralab grid`
        where = f"{command}: " if command else ""
        print(f"loralab: error: {where}{message}", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR)


def filesystem_message(exc: OSError) -> str | None:
    """One line for an error of the file system (full disk, read-only, no permission)."""
    if exc.errno not in FILESYSTEM_ERRNOS:
        return None
    where = f"{exc.filename}: " if exc.filename else ""
    return f"cannot write {where}{exc.strerror or exc}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        quiet_libraries()
        return func(args)
    except UserError as exc:
        print(f"loralab: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("loralab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `loralab ... | head`
        sys.stderr.close()
        return 0
    except OSError as exc:
        message = filesystem_message(exc)
        if message is None:
            raise
        print(f"loralab: error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
