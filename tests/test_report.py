"""The comparison report of a grid (`loralab compare`), on hand-made run records: no training."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import pytest

from loralab.errors import UserError
from loralab.experiments.records import FAILED, FINISHED, KILLED, RunRecord
from loralab.experiments.report import write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# variant -> (r, alpha, layers, adapted layers, trainable parameters); None: the baseline
VARIANTS = {
    "baseline": None,
    "r4-a8": (4, 8, "all", 6, 74_000),
    "r8-a16": (8, 16, "all", 6, 148_000),
    "r8-a32-l3": (8, 32, 3, 3, 74_000),
}
# validation metrics of the saved weights per dataset, variant and seed (0, 1)
F1 = {"baseline": (0.80, 0.82), "r4-a8": (0.855, 0.865), "r8-a16": (0.86, 0.87),
      "r8-a32-l3": (0.84, 0.85)}
PEARSON = {"baseline": (0.70, 0.72), "r4-a8": (0.80, 0.82), "r8-a16": (0.84, 0.85),
           "r8-a32-l3": (0.78, 0.79)}
MSE = {"baseline": (0.90, 0.86), "r4-a8": (0.60, 0.64), "r8-a16": (0.58, 0.66),
       "r8-a32-l3": (0.50, 0.52)}


def diagnostics(final: dict[str, float], metric: str) -> list[str]:
    lines = []
    for epoch in (1, 2, 3):
        for step in range(10 * (epoch - 1) + 5, 10 * epoch + 1, 5):
            lines.append({"step": step, "epoch": step / 10, "loss": 1.0 / step ** 0.5,
                          "reg_loss": 0.0, "learning_rate": 5e-4, "grad_norm": 1.0})
        scores = {k: v - 0.02 * (3 - epoch) for k, v in final.items()}
        lines.append({"step": 10 * epoch, "epoch": float(epoch), "eval": True, "loss": 0.5,
                      **scores})
    return [json.dumps(line) for line in lines]


def metrics_for(dataset: str, variant: str, seed: int) -> dict:
    if dataset == "mrpc":
        f1 = F1[variant][seed]
        chosen = {"accuracy": f1 - 0.05, "f1": f1, "mcc": f1 - 0.3, "loss": 0.4}
        test = {"accuracy": f1 - 0.06, "f1": f1 - 0.01, "mcc": f1 - 0.31, "loss": 0.45}
        metric, trivial = "f1", {"accuracy": 0.68, "f1": 0.81, "mcc": 0.0}
    else:
        chosen = {"pearson": PEARSON[variant][seed], "spearman": PEARSON[variant][seed] - 0.01,
                  "mse": MSE[variant][seed], "loss": MSE[variant][seed]}
        test, metric, trivial = None, "pearson", {"pearson": 0.0, "spearman": 0.0, "mse": 2.1}
    spec = VARIANTS[variant]
    return {"metric_for_best": metric, "saved": "best", "best": chosen,
            "final": {k: v - 0.1 for k, v in chosen.items()}, "test": test,
            "trivial_baseline": trivial, "train_seconds": 10.0 + seed, "epochs": 3, "steps": 30,
            "trainable_parameters": spec[4] if spec else 1_538, "total_parameters": 22_700_000,
            "adapted_layers": spec[3] if spec else 0, "baseline": spec is None,
            "peak_memory_mb": 900.0}


def make_run(root: Path, dataset: str, variant: str, seed: int) -> RunRecord:
    name = f"{dataset}-minilm-{variant}"
    spec = VARIANTS[variant]
    config = {"model": {"name": "minilm-l6"}, "training": {"learning_rate": 5e-4},
              "lora": {"enabled": False, "r": 16, "alpha": 32, "layers": "all"}}
    params = {"lora.enabled": False}
    if spec:
        config["lora"] = {"enabled": True, "r": spec[0], "alpha": spec[1], "layers": spec[2]}
        params = {"lora.r": spec[0], "lora.alpha": spec[1], "lora.layers": spec[2]}
    path = root / f"{name}-s{seed}"
    path.mkdir(parents=True)
    metrics = metrics_for(dataset, variant, seed)
    lines = diagnostics(metrics["best"], metrics["metric_for_best"])
    (path / "diagnostics.jsonl").write_text("\n".join(lines) + '\n{"step": 31, "epo',
                                            encoding="utf-8")  # a truncated last line
    return RunRecord(id=f"{dataset[:2]}{variant}{seed}", name=f"{name}-s{seed}",
                     status=FINISHED, path=path, model="minilm", dataset=dataset, seed=seed,
                     baseline=spec is None, variant=name, params=params, config=config,
                     metrics=metrics, started=0.0, ended=12.0)


def failed_run(root: Path) -> RunRecord:
    path = root / "mrpc-minilm-r16-a32-s0"
    path.mkdir(parents=True)
    return RunRecord(id="failed1", name="mrpc-minilm-r16-a32-s0", status=FAILED, path=path,
                     model="minilm", dataset="mrpc", seed=0, baseline=False,
                     variant="mrpc-minilm-r16-a32", params={"lora.r": 16},
                     config={"lora": {"r": 16, "alpha": 32, "layers": "all"}},
                     error="RuntimeError: CUDA out of memory <big>\nTraceback (most recent)")


@pytest.fixture()
def records(tmp_path: Path) -> list[RunRecord]:
    runs = [make_run(tmp_path / "runs", dataset, variant, seed)
            for dataset in ("mrpc", "stsb") for variant in VARIANTS for seed in (0, 1)]
    return [*runs, failed_run(tmp_path / "runs")]


def read_csv(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return {(row["dataset"], row["variant"]): row for row in csv.DictReader(handle)}


def test_summary_csv_holds_mean_std_and_gain_over_the_baseline(records, tmp_path):
    result = write_report(records, tmp_path / "report")
    rows = read_csv(tmp_path / "report" / "summary.csv")
    assert len(rows) == len(result.rows) == 8
    row = rows[("mrpc", "mrpc-minilm-r8-a16")]
    assert float(row["mean"]) == pytest.approx(0.865)
    assert float(row["std"]) == pytest.approx(statistics.stdev([0.86, 0.87]))
    assert float(row["gain_over_baseline"]) == pytest.approx(0.865 - 0.81)
    assert float(row["test_mean"]) == pytest.approx(0.855)
    assert float(row["accuracy"]) == pytest.approx(0.815)
    assert (row["seeds"], row["r"], row["alpha"], row["adapted_layers"]) == ("2", "8", "16", "6")
    assert row["trainable_parameters"] == "148000"
    assert float(row["train_seconds"]) == pytest.approx(10.5)
    assert row["metric"] == "f1"
    baseline = rows[("mrpc", "mrpc-minilm-baseline")]
    assert baseline["gain_over_baseline"] == "" and baseline["adapted_layers"] == "0"
    stsb = rows[("stsb", "stsb-minilm-r4-a8")]
    assert stsb["metric"] == "pearson"
    assert float(stsb["gain_over_baseline"]) == pytest.approx(0.81 - 0.71)
    assert float(stsb["mse"]) == pytest.approx(0.62)
    mrpc_order = [r["variant"] for r in result.rows if r["dataset"] == "mrpc"]
    assert mrpc_order == ["mrpc-minilm-r8-a16", "mrpc-minilm-r4-a8",
                          "mrpc-minilm-r8-a32-l3", "mrpc-minilm-baseline"]
    markdown = (tmp_path / "report" / "summary.md").read_text(encoding="utf-8")
    assert "ddof=1" in markdown and "positive gain always means better" in markdown
    assert "0.8650 ± 0.0071" in markdown and "+0.0550" in markdown


def test_best_json_names_the_best_and_the_cheaper_practical_pick(records, tmp_path):
    write_report(records, tmp_path / "report")
    best = json.loads((tmp_path / "report" / "best.json").read_text(encoding="utf-8"))
    by_dataset = {entry["dataset"]: entry for entry in best["groups"]}
    mrpc = by_dataset["mrpc"]
    assert (mrpc["variant"], mrpc["metric"], mrpc["seeds"]) == ("mrpc-minilm-r8-a16", "f1", 2)
    assert mrpc["mean"] == pytest.approx(0.865)
    assert mrpc["gain_over_baseline"] == pytest.approx(0.055)
    assert mrpc["run_ids"] == ["mrr8-a160", "mrr8-a161"]
    # r4-a8 (0.860) is 0.005 behind, within one std (0.0071), with half the parameters
    assert mrpc["practical_pick"] == "mrpc-minilm-r4-a8"
    assert "highest mean f1 over 2 seeds (0.865 ± 0.007)" in mrpc["why"]
    assert "+0.055 over the no-LoRA baseline" in mrpc["why"]
    assert "within one std" in mrpc["why"] and "practical pick" in mrpc["why"]
    stsb = by_dataset["stsb"]
    assert stsb["variant"] == "stsb-minilm-r8-a16" and stsb["metric"] == "pearson"
    assert stsb["practical_pick"] == "stsb-minilm-r8-a16"  # 2nd best is 0.035 behind
    assert "more than one std behind" in stsb["why"]


def test_lower_is_better_metric_ranks_the_smallest_mse_first(records, tmp_path):
    result = write_report(records, tmp_path / "report", metric="mse")
    assert result.metric == "mse"
    stsb = next(entry for entry in result.best if entry["dataset"] == "stsb")
    assert stsb["variant"] == "stsb-minilm-r8-a32-l3" and stsb["greater_is_better"] is False
    assert stsb["mean"] == pytest.approx(0.51)
    assert stsb["gain_over_baseline"] == pytest.approx(0.88 - 0.51)  # positive: better
    assert "lowest mean mse" in stsb["why"] and "0.370 lower mse than" in stsb["why"]
    rows = read_csv(tmp_path / "report" / "summary.csv")
    assert float(rows[("stsb", "stsb-minilm-r4-a8")]["gain_over_baseline"]) == \
        pytest.approx(0.88 - 0.62)
    # mrpc records no mse: its rows stay, without a value or a best
    assert rows[("mrpc", "mrpc-minilm-r8-a16")]["mean"] == ""
    assert [entry["dataset"] for entry in result.best] == ["stsb"]


def test_failed_runs_are_listed_not_tabled(records, tmp_path):
    records.append(RunRecord(id="k", name="stsb-minilm-r2-a4-s1", status=KILLED,
                             path=tmp_path, model="minilm", dataset="stsb", seed=1,
                             baseline=False, variant="stsb-minilm-r2-a4"))
    records.append(RunRecord(id="u", name="stsb-minilm-r2-a8-s0", status=FINISHED,
                             path=tmp_path, model="minilm", dataset="stsb", seed=0,
                             baseline=False, variant="stsb-minilm-r2-a8", metrics=None))
    result = write_report(records, tmp_path / "report")
    assert result.counts[FINISHED] == 17 and result.counts[FAILED] == 1
    summary = (tmp_path / "report" / "sweep_summary.txt").read_text(encoding="utf-8")
    assert "17 finished, 1 failed, 1 killed" in summary
    assert "stsb-minilm-r2-a8-s0 [finished]: finished, but no metrics" in summary
    assert "mrpc-minilm-r16-a32-s0 [failed]: RuntimeError: CUDA out of memory <big>" in summary
    assert "Traceback" not in summary
    assert "stsb-minilm-r2-a4-s1 [killed]: (no error recorded)" in summary
    assert "best: mrpc-minilm-r8-a16" in summary
    page = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "CUDA out of memory &lt;big&gt;" in page and "<big>" not in page
    table = (tmp_path / "report" / "summary.csv").read_text(encoding="utf-8")
    assert "r16-a32" not in table and "r2-a" not in table


def test_plots_are_valid_pngs_embedded_in_the_html(records, tmp_path):
    import matplotlib.image

    result = write_report(records, tmp_path / "report")
    plots = tmp_path / "report" / "plots"
    kinds = ("learning_curves", "metric_vs_rank", "metric_vs_alpha", "metric_vs_layers",
             "pareto")
    expected = {f"{kind}_minilm_{dataset}.png" for kind in kinds for dataset in ("mrpc", "stsb")}
    assert {p.name for p in plots.iterdir()} == expected
    assert {p.name for p in result.files if p.suffix == ".png"} == expected
    for name in expected:
        data = (plots / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000, name
        assert matplotlib.image.imread(plots / name).shape[0] > 300
    page = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == len(expected)
    assert 'class="best"' in page and "mrpc-minilm-r8-a16" in page
    assert not list((tmp_path / "report").rglob("*.tmp"))


def test_dotted_group_by_key_and_single_valued_parameters(records, tmp_path):
    result = write_report(records, tmp_path / "report", group_by=("dataset", "lora.r"))
    rows = read_csv(tmp_path / "report" / "summary.csv")
    assert rows[("mrpc", "mrpc-minilm-r8-a16")]["lora.r"] == "8"
    # the baseline (its lora section is unused) is its own group; gains still refer to it
    assert float(rows[("mrpc", "mrpc-minilm-r4-a8")]["gain_over_baseline"]) == \
        pytest.approx(0.86 - 0.81)
    names = {p.name for p in result.files if p.suffix == ".png"}
    assert "metric_vs_alpha_mrpc_r8.png" in names  # alpha 16 and 32 at r=8
    assert "metric_vs_rank_mrpc_r8.png" not in names  # one r per group: no plot
    assert "metric_vs_alpha_mrpc_r4.png" not in names
    assert "pareto_mrpc_rnone.png" in names and "pareto_mrpc_r16.png" not in names


def test_unknown_metric_and_group_by_key_are_user_errors(records, tmp_path):
    with pytest.raises(UserError, match="'bleu'.*accuracy, f1, loss, mcc, mse, pearson"):
        write_report(records, tmp_path / "report", metric="bleu")
    with pytest.raises(UserError, match="'lora.rank'.*model, dataset.*lora.alpha"):
        write_report(records, tmp_path / "report", group_by=("model", "lora.rank"))
    assert not (tmp_path / "report").exists()


def test_no_finished_run_still_writes_the_summary_and_page(records, tmp_path):
    out = tmp_path / "report"
    write_report(records, out)
    result = write_report([r for r in records if r.status != FINISHED], out)
    assert result.rows == [] and result.metric == ""
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == ["report.html",
                                                                     "sweep_summary.txt"]
    assert not list((out / "plots").iterdir())  # the earlier report's plots are gone
    assert "mrpc-minilm-r16-a32-s0" in (out / "report.html").read_text(encoding="utf-8")
    assert "no finished runs" in (out / "sweep_summary.txt").read_text(encoding="utf-8")
