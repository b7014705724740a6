"""`loralab config show`."""

from __future__ import annotations

import argparse

from loralab.cli.common import add_config, add_set_from


def cmd_config_show(args: argparse.Namespace) -> int:
    from loralab.config import dump_config, load_config

    print(dump_config(load_config(args.config, args.set, set_from=args.set_from)), end="")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="config utilities")
    config_sub = p.add_subparsers(dest="config_command", required=True)
    show = config_sub.add_parser("show", help="print the resolved config")
    add_config(show)
    add_set_from(show)
    show.set_defaults(func=cmd_config_show)
