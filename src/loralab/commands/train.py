"""`loralab train CONFIG`: one adapter, or several on one base (`adapters:`)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from loralab.config import load_config
from loralab.config.exported_data import with_exported_data
from loralab.errors import UserError
from loralab.training.summary import multi_summary_line, summary_line


def run_train(config_path: str, overrides: list[str], output: str | None, *,
              overwrite: bool = False, resume: bool = False, progress: bool = True,
              set_from: list[str] | None = None, data: str | None = None,
              dry_run: bool = False) -> int:
    """Train; `dry_run`: only check everything that can be checked without the model's
    weights (loralab.commands.dry_run), print one line, write nothing."""
    config = load_config(config_path, overrides, set_from=set_from)
    if data:
        config = with_exported_data(config, data)
    if dry_run:
        from loralab.commands.dry_run import dry_run as check_all

        print(check_all(config, output, overwrite=overwrite, resume=resume))
        return 0
    from loralab.models.limits import check_max_length
    from loralab.training.recipe import train

    check_max_length(config.model)  # before the model loads or anything is written
    if resume and not output:
        raise UserError("--resume needs --output: the run folder to continue")
    if not output and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UserError("give --output when training in several processes (each would "
                        "otherwise name its own time-stamped folder)")
    output = output or f"runs/{config.run_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if config.adapters:
        from loralab.training.multi import train_adapters

        metrics = train_adapters(config, output, progress=progress, overwrite=overwrite,
                                 resume=resume)
        print(multi_summary_line(metrics, Path(output)))
        return 0
    metrics = train(config, output, progress=progress, overwrite=overwrite, resume=resume)
    if metrics:  # empty on the other processes of a distributed run
        print(summary_line(metrics, Path(output)))
    return 0
