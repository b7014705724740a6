"""PNG plots of the comparison report.

matplotlib is imported inside the functions and every figure is drawn on its own Agg canvas
(no pyplot), so a report never touches the caller's backend or global figure state.
Each PNG is written to a temp name in its folder and renamed: never a half-written image.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loralab.atomic import atomic_path

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from loralab.experiments.records import RunRecord
    from loralab.experiments.report_model import Configuration, Group

DPI = 110
MAX_LINES = 8    # coloured, labelled series per plot; further configurations are drawn grey
MAX_LABELS = 16  # points of a metric-vs-parameter plot are labelled up to this many
MIXED = "LoRA configurations"  # the one series of configurations that share no other setting
# (file name part, Configuration attribute, dotted config key, axis label)
SWEEPS = (("rank", "r", "lora.r", "LoRA rank r"),
          ("alpha", "alpha", "lora.alpha", "LoRA alpha"),
          ("layers", "adapted_layers", "lora.layers", "adapted encoder layers"))
# label offsets (points) tried in turn around a labelled point
OFFSETS = ((7, 0), (-7, 0), (7, 11), (7, -11), (-7, 11), (-7, -11),
           (7, 22), (7, -22), (-7, 22), (-7, -22), (7, 33), (7, -33))


def write_plots(groups: list[Group], plots_dir: Path) -> dict[str, list[Path]]:
    """All plots of every group: {group slug: the PNG paths written}."""
    return {group.slug: plot_group(group, plots_dir) for group in groups}


def plot_group(group: Group, plots_dir: Path) -> list[Path]:
    makers = [(f"learning_curves_{group.slug}.png", lambda: learning_curves(group))]
    for name, attr, key, label in SWEEPS:
        makers.append((f"metric_vs_{name}_{group.slug}.png",
                       lambda attr=attr, key=key, label=label: metric_vs(group, attr, key, label)))
    makers.append((f"pareto_{group.slug}.png", lambda: pareto(group)))
    written = []
    for name, make in makers:
        figure = make()
        if figure is not None:
            save_png(figure, plots_dir / name)
            written.append(plots_dir / name)
    return written


# ---------------------------------------------------------------- figure plumbing


def new_figure(width: float, height: float, *, constrained: bool = True) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI,
                    layout="constrained" if constrained else None)
    FigureCanvasAgg(figure)
    return figure


def save_png(figure: Figure, path: Path) -> None:
    """Render to a temp file beside `path`, then one rename."""
    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        figure.savefig(handle, format="png", dpi=DPI)


def series_style(index: int) -> dict[str, Any]:
    if index < MAX_LINES:
        return {"color": f"C{index % 10}", "lw": 1.6, "zorder": 3}
    return {"color": "0.72", "lw": 0.8, "zorder": 1}


def config_styles(group: Group) -> dict[str, dict[str, Any]]:
    """Colour and legend label per variant: the best MAX_LINES LoRA configurations stand out."""
    styles: dict[str, dict[str, Any]] = {}
    lora = [c for c in group.configs if not c.baseline]
    for index, config in enumerate(lora):
        label = f"{config.label} ({config.mean:.3f})" if config.mean is not None \
            else config.label
        styles[config.variant] = {**series_style(index),
                                  "label": label if index < MAX_LINES else None}
    baselines = [c for c in group.configs if c.baseline]
    for config in baselines:
        name = "no-LoRA baseline" if len(baselines) == 1 else f"baseline {config.variant}"
        styles[config.variant] = {"color": "black", "ls": "--", "lw": 1.6, "zorder": 4,
                                  "label": name}
    return styles


def add_legend(figure: Figure, axes: Axes, hidden: int) -> None:
    """The axes' labelled lines (baselines first) below the plot, plus one grey entry that
    stands for the `hidden` series drawn without a label."""
    handles, labels = axes.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: "baseline" not in labels[i])
    handles, labels = [handles[i] for i in order], [labels[i] for i in order]
    if hidden > 0:
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], **series_style(MAX_LINES)))
        labels.append(f"{hidden} more configuration{'s' * (hidden != 1)} (grey)")
    if handles:
        figure.legend(handles, labels, fontsize=8, loc="outside lower center",
                      ncol=min(4, len(handles)), frameon=False)


# ---------------------------------------------------------------- learning curves


def read_diagnostics(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of diagnostics.jsonl; a missing file or bad line is skipped."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    lines = []
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict):
            lines.append(item)
    return lines


def mean_curve(runs: list[RunRecord], x_key: str, y_key: str, *, evaluation: bool
               ) -> tuple[list[float], list[float]]:
    """y against x averaged over the runs (seeds) that logged that x."""
    from loralab.experiments.report_model import number

    by_x: dict[float, list[float]] = defaultdict(list)
    for run in runs:
        for line in read_diagnostics(run.diagnostics_path):
            if bool(line.get("eval")) != evaluation:
                continue
            x, y = number(line.get(x_key)), number(line.get(y_key))
            if x is not None and y is not None:
                by_x[round(x, 4)].append(y)
    xs = sorted(by_x)
    return xs, [statistics.fmean(by_x[x]) for x in xs]


def learning_curves(group: Group) -> Figure | None:
    curves = {c.variant: (mean_curve(c.runs, "epoch", group.metric, evaluation=True),
                          mean_curve(c.runs, "step", "loss", evaluation=False))
              for c in group.configs}
    if not any(ev[0] or tr[0] for ev, tr in curves.values()):
        return None
    figure = new_figure(11, 5.2)
    left, right = figure.subplots(1, 2)
    styles = config_styles(group)
    for rank, config in enumerate(group.configs):
        (epochs, values), (steps, losses) = curves[config.variant]
        style = styles[config.variant]
        style = {**style, "zorder": style["zorder"] - rank / 100}  # the best on top
        left.plot(epochs, values, marker="o", ms=3.5, **style)
        right.plot(steps, losses, **{**style, "label": None})
    left.set(xlabel="epoch", ylabel=f"validation {group.metric} (mean over seeds)",
             title=f"validation {group.metric} by epoch")
    right.set(xlabel="step", ylabel="training loss (mean over seeds)",
              title="training loss by step")
    for axes in (left, right):
        axes.grid(alpha=0.3)
    figure.suptitle(f"{group.label}: learning curves")
    hidden = sum(1 for c in group.configs if not c.baseline) - MAX_LINES
    add_legend(figure, left, hidden)
    return figure


# ---------------------------------------------------------------- metric against r, alpha, layers


def category_key(value: Any) -> tuple[int, float, str]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def tick_label(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def series_name(config: Configuration, key: str, several_tasks: bool) -> str:
    """The configuration's other varied settings: configurations sharing them form a line."""
    from loralab.experiments.report_model import hashable

    parts = [f"{k.rsplit('.', 1)[-1]}={hashable(v)}" for k, v in
             sorted(config.runs[0].params.items()) if k != key and "seed" not in k]
    if several_tasks:
        parts.insert(0, f"{config.model}/{config.dataset}")
    return ", ".join(parts) or "LoRA"


def split_series(configs: list[Configuration], key: str
                 ) -> list[tuple[str, list[Configuration]]]:
    several = len({(c.model, c.dataset) for c in configs}) > 1
    series: dict[str, list[Configuration]] = {}
    for config in configs:  # ranked: the series of the best configuration comes first
        series.setdefault(series_name(config, key, several), []).append(config)
    if len(series) > 1 and all(len(members) == 1 for members in series.values()):
        return [(MIXED, configs)]  # x and the rest vary together: points, labelled
    return list(series.items())


def draw_baselines(axes: Axes, group: Group) -> None:
    baselines = group.references
    for config in baselines:
        name = "no-LoRA baseline" if len(baselines) == 1 else f"baseline {config.variant}"
        axes.axhline(config.mean, color="black", ls="--", lw=1.2, zorder=2,
                     label=f"{name} ({config.mean:.3f})")
        if config.std:
            axes.axhspan(config.mean - config.std, config.mean + config.std, color="0.6",
                         alpha=0.15, lw=0, zorder=0)


def metric_vs(group: Group, attr: str, key: str, xlabel: str) -> Figure | None:
    configs = [c for c in group.configs if not c.baseline and c.mean is not None
               and getattr(c, attr) is not None]
    values = sorted({getattr(c, attr) for c in configs}, key=category_key)
    if len(values) < 2:
        return None
    position = {v: i for i, v in enumerate(values)}
    series = split_series(configs, key)
    figure = new_figure(8, 5)
    axes = figure.subplots()
    spread = min(0.3, 0.06 * (len(series) - 1))
    placed: list[tuple[list[float], list[Configuration]]] = []
    for index, (name, members) in enumerate(series):
        members = sorted(members, key=lambda c: position[getattr(c, attr)])
        offset = spread * (index / (len(series) - 1) - 0.5) if len(series) > 1 else 0.0
        xs = [position[getattr(c, attr)] + offset for c in members]
        connect = name != MIXED and len({round(x, 6) for x in xs}) == len(xs)
        style = series_style(index)
        placed.append((xs, members))
        axes.errorbar(xs, [c.mean for c in members], yerr=[c.std or 0.0 for c in members],
                      marker="o", ms=5, capsize=3, elinewidth=1, color=style["color"],
                      lw=style["lw"] if connect else 0, zorder=style["zorder"],
                      label=name if index < MAX_LINES else None)
    draw_baselines(axes, group)
    axes.set_xticks(range(len(values)), [tick_label(v) for v in values])
    axes.set_xlim(-0.5, len(values) - 0.5)
    axes.set(xlabel=xlabel, ylabel=f"validation {group.metric} (mean ± std over seeds)",
             title=f"{group.label}: {group.metric} vs {xlabel}")
    axes.grid(alpha=0.3)
    add_legend(figure, axes, len(series) - MAX_LINES)
    if len(series) == 1 and series[0][0] == MIXED and len(configs) <= MAX_LABELS:
        axes.get_ylim()  # settle the autoscaled limits
        figure.get_layout_engine().execute(figure)  # and the axes box, before measuring text
        place_labels(figure, axes, [(xs[i], c.mean, c.std, c.label)
                                    for xs, members in placed for i, c in enumerate(members)])
    return figure


# ---------------------------------------------------------------- Pareto front


def pareto_front(configs: list[Configuration], greater: bool) -> list[Configuration]:
    """Configurations with a better metric than every one with at most as many parameters."""
    sign = 1.0 if greater else -1.0
    front: list[Configuration] = []
    for config in sorted(configs, key=lambda c: (c.trainable, -sign * c.mean)):
        if not front or sign * (config.mean - front[-1].mean) > 0:
            front.append(config)
    return front


def pareto(group: Group) -> Figure | None:
    points = [c for c in group.configs if c.mean is not None and c.trainable]
    if not points:
        return None
    from matplotlib.lines import Line2D

    figure = new_figure(8.5, 5.6, constrained=False)
    figure.subplots_adjust(left=0.12, right=0.97, top=0.91, bottom=0.2)
    axes = figure.subplots()
    axes.set_xscale("log")
    for config in points:
        axes.errorbar(config.trainable, config.mean, yerr=config.std or 0.0, capsize=3,
                      marker="*" if config.baseline else "o", ms=13 if config.baseline else 6,
                      color="black" if config.baseline else "C0", zorder=4, lw=0,
                      elinewidth=1)
    front = pareto_front(points, group.greater)
    right = max(c.trainable for c in points)
    axes.step([c.trainable for c in front] + [right], [c.mean for c in front] +
              [front[-1].mean], where="post", color="C3", lw=1.5, zorder=3)
    inside = {c.variant for c in points}
    unplaced = [c for c in group.references if c.variant not in inside]
    for config in unplaced:  # no parameter count: a line instead of a point
        axes.axhline(config.mean, color="black", ls="--", lw=1.2)
    set_limits(axes, points, unplaced)
    axes.set(xlabel="trainable parameters (log scale)",
             ylabel=f"validation {group.metric} (mean ± std over seeds)",
             title=f"{group.label}: {group.metric} vs trainable parameters")
    axes.grid(alpha=0.3, which="both")
    place_labels(figure, axes, [(c.trainable, c.mean, c.std, c.label) for c in points],
                 step_boxes(axes, front, right))
    handles = [Line2D([], [], marker="o", color="C0", lw=0, label="LoRA configuration")]
    if any(c.baseline for c in points):
        handles.append(Line2D([], [], marker="*", ms=12, color="black", lw=0,
                              label="no-LoRA baseline"))
    if unplaced:
        handles.append(Line2D([], [], color="black", ls="--", lw=1.2,
                              label="no-LoRA baseline (reference)"))
    handles.append(Line2D([], [], color="C3", lw=1.5,
                          label=f"Pareto front (best {group.metric} for at most x parameters)"))
    figure.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8,
                  frameon=False)
    return figure


def set_limits(axes: Axes, points: list[Configuration], lines: list[Configuration]) -> None:
    xs = [c.trainable for c in points]
    axes.set_xlim(min(xs) / 2.5, max(xs) * 4)
    lows = [c.mean - (c.std or 0) for c in points + lines]
    highs = [c.mean + (c.std or 0) for c in points + lines]
    pad = (max(highs) - min(lows)) * 0.12 or abs(max(highs)) * 0.05 or 0.05
    axes.set_ylim(min(lows) - pad, max(highs) + pad)


def place_labels(figure: Figure, axes: Axes,
                 points: list[tuple[float, float, float | None, str]],
                 obstacles: list[Any] | None = None) -> None:
    """Label each point (x, y, std, text) at the first offset whose text overlaps no other
    label, marker, error bar or obstacle (display boxes) and stays inside the axes."""
    renderer = figure.canvas.get_renderer()
    frame = axes.get_window_extent(renderer)
    taken = [box for x, y, std, _ in points for box in marker_boxes(axes, x, y, std)]
    taken += obstacles or []
    for x, y, _, text in sorted(points, key=lambda p: (p[0], -p[1])):
        box, offset = None, OFFSETS[0]
        for dx, dy in OFFSETS:
            note = axes.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points",
                                 fontsize=8, ha="left" if dx > 0 else "right", va="center")
            extent = note.get_window_extent(renderer)
            note.remove()
            inside = frame.x0 <= extent.x0 and extent.x1 <= frame.x1 \
                and frame.y0 <= extent.y0 and extent.y1 <= frame.y1
            if inside and not any(extent.overlaps(t) for t in taken):
                box, offset = extent, (dx, dy)
                break
        dx, dy = offset
        arrow = {"arrowstyle": "-", "color": "0.5", "lw": 0.6} if dy else None
        axes.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=8,
                      ha="left" if dx > 0 else "right", va="center", arrowprops=arrow,
                      bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none",
                            "alpha": 0.75}, zorder=5)
        if box is not None:
            taken.append(box)


def marker_boxes(axes: Axes, x: float, y: float, std: float | None) -> list[Any]:
    """Display boxes of a point's marker and of its error bar."""
    from matplotlib.transforms import Bbox

    px, py = axes.transData.transform((x, y))
    boxes = [Bbox.from_extents(px - 8, py - 8, px + 8, py + 8)]
    if std:
        _, low = axes.transData.transform((x, y - std))
        _, high = axes.transData.transform((x, y + std))
        boxes.append(Bbox.from_extents(px - 4, low, px + 4, high))
    return boxes


def step_boxes(axes: Axes, front: list[Configuration], right: float) -> list[Any]:
    """Display boxes around the segments of the Pareto step line, kept free of labels."""
    from matplotlib.transforms import Bbox

    corners = [(c.trainable, c.mean) for c in front] + [(right, front[-1].mean)]
    boxes = []
    for (x0, y0), (x1, y1) in zip(corners, corners[1:]):
        (px0, py0), (px1, py1) = axes.transData.transform([(x0, y0), (x1, y1)])
        boxes.append(Bbox.from_extents(px0, py0 - 3, px1, py0 + 3))  # horizontal, at y0
        boxes.append(Bbox.from_extents(px1 - 3, min(py0, py1), px1 + 3, max(py0, py1)))
    return boxes
