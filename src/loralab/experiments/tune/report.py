"""The end of a study: DIR/best.yaml (the base config with the best trial's values: `loralab
train DIR/best.yaml` trains the best trial again), DIR/study.md (one row per trial), the plots
(optimisation history, parameter importance, parallel coordinates; Optuna's matplotlib
figures as PNG) and DIR/report.html with the table and the plots."""

from __future__ import annotations

import html
import json
import warnings
from pathlib import Path
from typing import Any

from loralab.atomic import atomic_write_text
from loralab.experiments.status import CONFIG_FILE, read_metrics, read_status
from loralab.experiments.tune.layout import TRIALS_DIR

PLOTS_DIR = "plots"
PLOTS = {"history": "plot_optimization_history", "importance": "plot_param_importances",
         "parallel": "plot_parallel_coordinate"}


def trial_folders(study: Any, out: Path) -> dict[int, str]:
    """Trial number -> run folder name: the trial's `folder` attribute (local backend), else
    the run folder whose run.json names the trial (Ray backend)."""
    found = {}
    for run_dir in sorted((out / TRIALS_DIR).glob("*")):
        number = read_status(run_dir).get("trial")
        if isinstance(number, int):
            found[number] = run_dir.name
    for trial in study.get_trials(deepcopy=False):
        if trial.user_attrs.get("folder"):
            found[trial.number] = trial.user_attrs["folder"]
    return found


def trial_rows(study: Any, out: Path) -> list[dict[str, Any]]:
    rows, folders = [], trial_folders(study, out)
    for trial in study.get_trials(deepcopy=False):
        folder = folders.get(trial.number)
        metrics = read_metrics(out / TRIALS_DIR / folder) if folder else None
        value = trial.value if trial.value is not None else trial.user_attrs.get(
            "pruned_value")
        state = {"fail": "failed"}.get(trial.state.name.lower(), trial.state.name.lower())
        if folder and read_status(out / TRIALS_DIR / folder).get("trial_state") == "pruned":
            state = "pruned"  # Ray Tune tells a trial ASHA stopped as complete
        rows.append({"number": trial.number, "state": state
                     + (" (killed)" if trial.user_attrs.get("killed") else ""),
                     "value": value, "params": trial.params, "folder": folder,
                     "steps": (metrics or {}).get("steps"),
                     "epochs": (metrics or {}).get("epochs"),
                     "seconds": (metrics or {}).get("train_seconds")})
    return rows


def cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def study_markdown(rows: list[dict[str, Any]], settings: dict[str, Any],
                   best: int | None) -> str:
    keys = [p["key"] for p in settings["space"]]
    header = ["trial", "state", settings["metric"], *keys, "steps", "train s", "folder"]
    lines = [f"# Study: {settings['direction']} {settings['metric']}", "",
             f"pruner {settings['pruner']}, seed {settings['seed']}, {len(rows)} trials"
             + (f"; best: trial {best}" if best is not None else "; no trial completed"), "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        mark = " **best**" if row["number"] == best else ""
        cells = [f"{row['number']}{mark}", row["state"], cell(row["value"]),
                 *(cell(row["params"].get(k)) for k in keys), cell(row["steps"]),
                 cell(row["seconds"]), row["folder"] or "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_plots(study: Any, folder: Path) -> dict[str, str]:
    """The plots Optuna can draw for this study (each needs enough finished trials); the
    reason for each one it cannot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    import optuna.visualization.matplotlib as views

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # "no complete trials": in notes

    folder.mkdir(parents=True, exist_ok=True)
    notes = {}
    for name, function in PLOTS.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                axes = getattr(views, function)(study)
            figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
            figure.set_size_inches(8, 5)
            figure.tight_layout()
            figure.savefig(folder / f"{name}.png", dpi=100)
            plt.close(figure)
        except Exception as exc:  # noqa: BLE001 - too few trials for this plot
            notes[name] = f"{type(exc).__name__}: {exc}".splitlines()[0]
            (folder / f"{name}.png").unlink(missing_ok=True)
    return notes


def html_page(rows: list[dict[str, Any]], settings: dict[str, Any], best: int | None,
              notes: dict[str, str]) -> str:
    keys = [p["key"] for p in settings["space"]]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in
                   ["trial", "state", settings["metric"], *keys, "steps", "folder"])
    body = "".join(
        f"<tr{' class=best' if r['number'] == best else ''}><td>{r['number']}</td>"
        f"<td>{r['state']}</td><td>{cell(r['value'])}</td>"
        + "".join(f"<td>{html.escape(cell(r['params'].get(k)))}</td>" for k in keys)
        + f"<td>{cell(r['steps'])}</td><td>{html.escape(r['folder'] or '-')}</td></tr>"
        for r in rows)
    plots = "".join(
        f"<h2>{name}</h2>" + (f"<p>not drawn: {html.escape(notes[name])}</p>" if name in notes
                              else f"<img src='{PLOTS_DIR}/{name}.png' alt='{name}'>")
        for name in PLOTS)
    return ("<!doctype html><html><head><meta charset=utf-8><title>loralab tune</title>"
            "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;"
            "border-bottom:1px solid #ddd}tr.best{background:#e6ffe6}img{max-width:800px}"
            f"</style></head><body><h1>{settings['direction']} {settings['metric']}</h1>"
            f"<p>best: trial {best}</p><table><tr>{head}</tr>{body}</table>{plots}"
            "</body></html>\n")


def best_trial(study: Any) -> Any | None:
    try:
        return study.best_trial
    except ValueError:  # no complete trial
        return None


def write_study_outputs(out: Path, study: Any, settings: dict[str, Any]) -> int:
    rows = trial_rows(study, out)
    best = best_trial(study)
    number = best.number if best is not None else None
    if best is not None:
        folder = trial_folders(study, out)[best.number]
        config = (out / TRIALS_DIR / folder / CONFIG_FILE).read_text(
            encoding="utf-8")
        atomic_write_text(out / "best.yaml", f"# loralab tune: trial {best.number}, "
                          f"{settings['metric']}={best.value:.6g}; params "
                          f"{json.dumps(best.params)}\n{config}")
    atomic_write_text(out / "study.md", study_markdown(rows, settings, number))
    notes = write_plots(study, out / PLOTS_DIR)
    atomic_write_text(out / "report.html", html_page(rows, settings, number, notes))
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    if best is None:
        print(f"study: {summary}; no trial completed -> {out / 'study.md'}")
        return 1
    print(f"study: {summary}; best trial {best.number}: {settings['metric']}="
          f"{best.value:.4f} {json.dumps(best.params)} -> {out / 'best.yaml'}")
    return 0
