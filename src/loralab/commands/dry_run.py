"""`loralab train --dry-run`: every check `train` makes before it writes, and nothing else.

The config (schema, ranges, the rules across sections), `model.max_length` against the model's
position limit (its config.json only, no weights), every split's data file read and checked row
by row, the label set, every row encoded with the model's tokenizer (undeclared labels, tokens
and tags that disagree, prompt templates, lengths), `training.metric_for_best` against the
task's metrics, and the output
folder (not a file, writable, not finished unless --overwrite, not locked, a resumable
checkpoint with --resume). It loads no model weights and writes nothing. Checks that need the
model itself (target modules, the rank against the adapted layers' size, unfreezing depth) run
when `train` builds the model, still before anything is written.
"""

from __future__ import annotations

from pathlib import Path

from loralab.config import Config


def dry_run(config: Config, output: str | None, *, overwrite: bool = False,
            resume: bool = False) -> str:
    """The one line to print when every check passed; UserError for the first that fails."""
    from loralab.models.limits import check_max_length

    check_max_length(config.model)
    if output:
        check_output(config, Path(output), overwrite=overwrite, resume=resume)
    named = config.adapter_configs() if config.adapters else [(config.run_name, config)]
    counts = [check_data(cfg) for _, cfg in named]
    rows = ", ".join(f"{name}: {count}" for (name, _), count in zip(named, counts))
    return (f"dry run: the config, model limits, data ({rows}) and output folder are valid; "
            "no model weights were loaded and nothing was written")


def check_output(config: Config, output: Path, *, overwrite: bool, resume: bool) -> None:
    from loralab.errors import UserError
    from loralab.training.run_folder import RunFolder

    if resume and overwrite:
        raise UserError("--resume continues the run in --output and --overwrite replaces it: "
                        "give one of them")
    run = RunFolder(output, overwrite=overwrite)   # checks only
    if resume and not config.adapters:
        run.checkpoint_for(config)


def check_data(config: Config) -> str:
    """Read and check the data of one single-adapter config: '120 train / 30 validation rows,
    2 labels'."""
    from loralab.data.loader import load_data
    from loralab.metrics.metric_registry import resolve_metric
    from loralab.tasks import get_task

    task = get_task(config.model.task, config)
    data = load_data(config.data, task.records)
    labels = task.label_names(data.every_record, config)
    tokenizer = task.load_tokenizer(config)
    for records in data.splits.values():  # the checks of encoding: labels, tags, templates
        task.encode(records, tokenizer, labels, config.model.max_length)
    wanted = config.training.metric_for_best or task.default_metric
    resolve_metric(wanted.split("/")[0], task.metric_names(config, labels),
                   key="training.metric_for_best")
    sizes = " / ".join(f"{len(rows)} {split}" for split, rows in data.splits.items())
    return f"{sizes} rows" + (f", {len(labels)} labels" if labels else "")
