"""The `loralab` command line: the sub-command table and `main` (loralab.cli.entry), and one
module per command group with its argument wiring: train (train, demo), evaluate (eval, predict),
experiments (grid, runs, compare), release (gate, publish), serving (serve, feedback), export
(export, verify), data (data synth, data export), config (config show)."""

from loralab.cli.entry import build_parser, main

__all__ = ["build_parser", "main"]
