"""Arguments several sub-commands share, and the argparse types that name a bad value."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def add_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set training.epochs=1 (repeatable)")


def add_config(parser: argparse.ArgumentParser) -> None:
    """The optional CONFIG positional with its --set overrides."""
    parser.add_argument("config", nargs="?", help="YAML config file (default: the built-in "
                                                  "defaults, with --set on top)")
    add_set(parser)


def add_set_from(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set-from", action="append", default=[], metavar="FILE:KEY",
                        help="apply a YAML mapping of KEY: VALUE overrides, e.g. "
                             "params.yaml:profiles.smoke.train (repeatable; before --set)")


def add_no_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (the message names the value)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def at_least(kind: type, minimum: float = 1) -> Callable[[str], float]:
    """argparse type: a number of `kind` that is at least `minimum`."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text}")
        return value
    return parse
