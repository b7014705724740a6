"""Grid expansion: products, zips, variants, models x datasets, seeds, excludes, baselines;
run ids and names; validation of every value before anything runs; shards."""

import pytest
import yaml

from loralab.cli import main
from loralab.errors import ConfigError
from loralab.experiments.expand import build_plan
from loralab.experiments.grid_command import parse_shard, shard_runs


def grid_file(tmp_path, base=None, **grid):
    base = base or {"model": {"name": "some/encoder"}, "lora": {"r": 16, "alpha": 32},
                    "data": {"train": "data/train.jsonl"}}
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({"base": "base.yaml", **grid}, sort_keys=False))
    return path


def test_grid_is_a_cartesian_product_times_seeds(tmp_path):
    plan = build_plan(grid_file(tmp_path, grid={"lora.r": [4, 8], "lora.dropout": [0.0, 0.1]},
                                seeds=[0, 1, 2]))
    assert len(plan.runs) == 2 * 2 * 3
    combos = {(r.config.lora.r, r.config.lora.dropout, r.seed) for r in plan.runs}
    assert len(combos) == 12
    assert {r.seed for r in plan.runs} == {0, 1, 2}
    assert plan.runs[0].params == {"lora.dropout": 0.0, "lora.r": 4}


def test_zip_varies_keys_together_and_variants_are_rows(tmp_path):
    plan = build_plan(grid_file(tmp_path, zip={"lora.r": [4, 8, 16], "lora.alpha": [8, 16, 32]}))
    assert [(r.config.lora.r, r.config.lora.alpha) for r in plan.runs] == [(4, 8), (8, 16),
                                                                            (16, 32)]
    plan = build_plan(grid_file(tmp_path, variants=[{"lora.r": 4, "lora.layers": 2},
                                                    {"lora.r": 8, "lora.layers": "all"}],
                                grid={"lora.dropout": [0.0, 0.2]}))
    assert len(plan.runs) == 4
    assert {(r.config.lora.r, r.config.lora.layers) for r in plan.runs} == {(4, 2), (8, "all")}


def test_zip_groups_must_have_equal_lengths(tmp_path):
    with pytest.raises(ConfigError, match="same length .*lora.r has 2, lora.alpha has 3"):
        build_plan(grid_file(tmp_path, zip={"lora.r": [4, 8], "lora.alpha": [8, 16, 32]}))


def test_models_times_datasets_with_labels_and_baselines(tmp_path):
    plan = build_plan(grid_file(
        tmp_path,
        models=["org/bert-base-uncased", {"name": "rob", "model.name": "org/roberta-base"}],
        datasets=[{"name": "mrpc", "model.labels": ["no", "yes"], "data": {"train": "m.tsv"}},
                  {"name": "stsb", "model.task": "regression", "training.metric_for_best":
                   "pearson", "data.train": "s.tsv"}],
        grid={"lora.r": [4, 8]}, seeds=[0, 1], baseline=True))
    assert len(plan.runs) == 2 * 2 * 2 * (2 + 1)
    baselines = [r for r in plan.runs if r.baseline]
    assert len(baselines) == 8
    assert all(not r.config.lora.enabled for r in baselines)
    assert {r.model for r in plan.runs} == {"bert", "rob"}
    stsb = next(r for r in plan.runs if r.dataset == "stsb" and r.model == "rob")
    assert stsb.config.model.task == "regression"
    assert stsb.config.model.name == "org/roberta-base"
    assert stsb.config.data.train == str(tmp_path / "s.tsv")  # relative to the grid file
    names = {r.name for r in plan.runs}
    assert "mrpc-bert-r4-a32-lall-s0" in names and "stsb-rob-baseline-s1" in names


def test_exclude_rules_match_labels_and_config_keys(tmp_path):
    plan = build_plan(grid_file(
        tmp_path, datasets=[{"name": "a", "data.train": "a.tsv"},
                            {"name": "b", "data.train": "b.tsv"}],
        grid={"lora.r": [4, 8, 16]}, seeds=[0, 1], baseline=True,
        exclude=[{"dataset": "b", "lora.r": [4, 8]}, {"baseline": True, "seed": 1}]))
    kept = {(r.dataset, r.config.lora.r, r.baseline, r.seed) for r in plan.runs}
    assert ("b", 4, False, 0) not in kept and ("b", 16, False, 0) in kept
    assert ("a", 4, False, 1) in kept
    assert sum(r.baseline for r in plan.runs) == 2  # seed 0 of each dataset
    with pytest.raises(ConfigError, match="exclude: 'lora.rank'"):
        build_plan(grid_file(tmp_path, grid={"lora.r": [4]}, exclude=[{"lora.rank": 4}]))


def test_ids_are_stable_and_change_only_with_the_config(tmp_path):
    first = build_plan(grid_file(tmp_path, grid={"lora.r": [4, 8]}, seeds=[0, 1]))
    again = build_plan(grid_file(tmp_path, grid={"lora.r": [4, 8]}, seeds=[0, 1]))
    assert [r.id for r in first.runs] == [r.id for r in again.runs]
    assert len({r.id for r in first.runs}) == 4
    changed = build_plan(grid_file(tmp_path, grid={"lora.r": [4, 16]}, seeds=[0, 1]))
    same = {r.id for r in first.runs} & {r.id for r in changed.runs}
    assert same == {r.id for r in first.runs if r.config.lora.r == 4}
    # threads and the run's name do not change the identity
    threads = build_plan(grid_file(tmp_path, grid={"lora.r": [4, 8]}, seeds=[0, 1]),
                         ["training.threads=3"])
    assert [r.id for r in threads.runs] == [r.id for r in first.runs]


def test_every_invalid_value_is_reported_before_any_run(tmp_path, capsys):
    path = grid_file(tmp_path, grid={"lora.r": [8, 0], "lora.dropout": [0.1, 1.5]})
    with pytest.raises(ConfigError) as info:
        build_plan(path)
    message = str(info.value)
    assert "lora.r" in message and "lora.dropout" in message
    assert main(["grid", str(path), "--output", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()
    assert "did you mean lora.r?" in str(pytest.raises(
        ConfigError, build_plan, grid_file(tmp_path, grid={"lora.rank": [4]})).value)


def test_a_key_varied_in_two_places_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="lora.r is varied by both"):
        build_plan(grid_file(tmp_path, grid={"lora.r": [4]},
                             zip={"lora.r": [8], "lora.alpha": [16]}))


def test_inline_grid_in_a_plain_config(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"model": {"name": "x/bert"}, "data": {"train": "t.tsv"},
                                    "grid": {"lora.r": [2, 4]}, "seeds": [5]}))
    plan = build_plan(path)
    assert [r.config.lora.r for r in plan.runs] == [2, 4]
    assert plan.runs[0].config.training.seed == 5
    assert plan.runs[0].config.data.train == str(tmp_path / "t.tsv")


def test_smoke_overrides_change_ids_not_names(tmp_path):
    path = grid_file(tmp_path, grid={"lora.r": [4, 8]})
    real, smoke = build_plan(path), build_plan(path, smoke=True)
    assert [r.name for r in real.runs] == [r.name for r in smoke.runs]
    assert not {r.id for r in real.runs} & {r.id for r in smoke.runs}
    assert all(r.config.training.epochs == 1 and r.config.data.max_train_samples == 64
               for r in smoke.runs)


def test_dry_run_lists_ids_and_differences(tmp_path, capsys):
    path = grid_file(tmp_path, grid={"lora.r": [4, 8]}, baseline=True)
    assert main(["grid", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    plan = build_plan(path)
    for run in plan.runs:
        assert run.id in out and run.name in out
    assert "lora.r=4" in out and "lora.enabled=false" in out


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_shards_cover_every_run_exactly_once(tmp_path, count):
    plan = build_plan(grid_file(tmp_path, grid={"lora.r": [1, 2, 4, 8]}, seeds=[0, 1, 2],
                                baseline=True))
    shards = [shard_runs(plan.runs, parse_shard(f"{i}/{count}")) for i in range(count)]
    ids = [r.id for shard in shards for r in shard]
    assert sorted(ids) == sorted(r.id for r in plan.runs)
    assert len(ids) == len(set(ids))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_bad_shard_is_a_user_error(tmp_path):
    path = grid_file(tmp_path, grid={"lora.r": [4]})
    assert main(["grid", str(path), "--shard", "4/4"]) == 2
    assert main(["grid", str(path), "--shard", "x"]) == 2
