"""`loralab grid`, `loralab runs list|show|reindex` and `loralab compare`."""

from __future__ import annotations

import argparse

from loralab.cli.common import positive_int


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


def add_commands(sub: argparse._SubParsersAction) -> None:
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
