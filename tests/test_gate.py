"""`loralab gate`: the rule grammar (text and YAML), every rule kind passing and failing,
directions from the metric registry, aliases, gate.json, exit codes, and the bad inputs
(exit 2, one line, nothing written). Results file shapes: test_gate_results.py; promotion:
test_gate_promote.py."""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml
from gate_helpers import (
    GRID_BEST,
    RUN_METRICS,
    bench,
    gate,
    run_cli,
    tree,
    write_json,
)

from loralab.cli import main
from loralab.errors import ConfigError
from loralab.evaluation.gate.check import check_rules
from loralab.evaluation.gate.results import load_results
from loralab.evaluation.gate.rules import Rule, parse_rule, rules_from_data

# ---------------------------------------------------------------- the grammar


@pytest.mark.parametrize(("text", "data", "expected"), [
    ("code.pass@1 >= 0.30", {"metric": "code.pass@1", "min": 0.30},
     Rule("code.pass@1", "min", 0.30)),
    ("validation.perplexity <= 1.5", {"metric": "validation.perplexity", "max": 1.5},
     Rule("validation.perplexity", "max", 1.5)),
    ("code.pass@1 >= baseline - 0.02",
     {"metric": "code.pass@1", "max_regression": {"absolute": 0.02}},
     Rule("code.pass@1", "baseline", -0.02, False, True)),
    ("code.pass@1 >= baseline * 0.98",
     {"metric": "code.pass@1", "max_regression": {"relative": 0.02}},
     Rule("code.pass@1", "baseline", -0.02, True, True)),
    ("code.pass@1 >= baseline + 0.01",
     {"metric": "code.pass@1", "min_improvement": 0.01},
     Rule("code.pass@1", "baseline", 0.01, False, True)),
    ("code.pass@1 >= base + 0.05", {"metric": "code.pass@1", "beat_base_by": 0.05},
     Rule("code.pass@1", "base", 0.05, False, True)),
    ("code.pass@1 >= base * 1.1", {"metric": "code.pass@1", "beat_base_by": {"relative": 0.1}},
     Rule("code.pass@1", "base", 0.1, True, True)),
    ("validation.perplexity <= baseline + 0.5",
     {"metric": "validation.perplexity", "max_regression": 0.5},
     Rule("validation.perplexity", "baseline", -0.5, False, False)),
    ("validation.loss <= baseline * 1.05",
     {"metric": "validation.loss", "max_regression": {"relative": 0.05}},
     Rule("validation.loss", "baseline", -0.05, True, False)),
    ("validation.perplexity <= base - 1", {"metric": "validation.perplexity",
                                           "beat_base_by": 1},
     Rule("validation.perplexity", "base", 1.0, False, False)),
    ("code.pass@1 >= baseline", {"metric": "code.pass@1", "max_regression": 0},
     Rule("code.pass@1", "baseline", 0.0, False, True)),
])
def test_text_and_data_forms_build_the_same_rule(text, data, expected):
    from_text = parse_rule(text)
    from_data, = rules_from_data([data], "rules.yaml")
    assert from_text == expected == from_data
    assert parse_rule(from_text.text) == expected     # the canonical text parses back
    assert from_data.text == from_text.text


def test_one_data_entry_with_several_criteria_and_text_items(tmp_path):
    rules = rules_from_data({"rules": [
        {"metric": "code.pass@1", "min": 0.3, "max_regression": {"absolute": 0.02},
         "beat_base_by": 0.05},
        "docstring.rougeL >= baseline * 0.98"]}, "rules.yaml")
    assert [r.text for r in rules] == ["code.pass@1 >= 0.3", "code.pass@1 >= baseline - 0.02",
                                       "code.pass@1 >= base + 0.05",
                                       "docstring.rougeL >= baseline * 0.98"]
    assert rules[1].source == "rules.yaml: rules[0].max_regression"


def test_spacing_and_numbers_in_text_rules():
    assert parse_rule("code.pass@1>=baseline-0.02") == parse_rule("code.pass@1 >= baseline - .02")
    assert parse_rule("validation.mse <= 2e-3").value == 0.002


# ---------------------------------------------------------------- every rule kind


def check(tmp_path, rule: str, results: dict, baseline: dict | None = None):
    res = load_results(write_json(tmp_path / "results.json", results))
    base = load_results(write_json(tmp_path / "baseline.json", baseline)) if baseline else None
    outcome, = check_rules([parse_rule(rule)], res, base)
    return outcome


@pytest.mark.parametrize(("rule", "results", "baseline", "status", "needed"), [
    ("code.pass@1 >= 0.30", bench(0.34), None, "pass", 0.30),
    ("code.pass@1 >= 0.30", bench(0.29), None, "fail", 0.30),
    ("validation.perplexity <= 10", bench(perplexity=9.9), None, "pass", 10),
    ("validation.perplexity <= 10", bench(perplexity=10.1), None, "fail", 10),
    ("code.pass@1 >= baseline - 0.02", bench(0.33), bench(0.34), "pass", 0.32),
    ("code.pass@1 >= baseline - 0.02", bench(0.31), bench(0.34), "fail", 0.32),
    # on the bound: 0.33 - 0.03 is 0.30000000000000004 in floats, and 0.30 still passes
    ("code.pass@1 >= baseline - 0.03", bench(0.30), bench(0.33), "pass", 0.30),
    ("code.pass@1 >= baseline * 0.98", bench(0.50), bench(0.51), "pass", 0.4998),
    ("code.pass@1 >= baseline * 0.98", bench(0.49), bench(0.51), "fail", 0.4998),
    ("code.pass@1 >= baseline + 0.01", bench(0.36), bench(0.34), "pass", 0.35),
    ("code.pass@1 >= baseline + 0.01", bench(0.345), bench(0.34), "fail", 0.35),
    ("code.pass@1 >= base + 0.05", bench(0.26, base_pass=0.2), None, "pass", 0.25),
    ("code.pass@1 >= base + 0.05", bench(0.24, base_pass=0.2), None, "fail", 0.25),
    ("code.pass@1 >= base * 1.5", bench(0.31, base_pass=0.2), None, "pass", 0.30),
    ("code.pass@1 >= base * 1.5", bench(0.29, base_pass=0.2), None, "fail", 0.30),
    # lower-is-better: the registry's direction turns the tolerance upward
    ("validation.perplexity <= baseline + 0.5", bench(perplexity=8.9), bench(perplexity=8.5),
     "pass", 9.0),
    ("validation.perplexity <= baseline + 0.5", bench(perplexity=9.1), bench(perplexity=8.5),
     "fail", 9.0),
    ("validation.perplexity <= baseline * 1.1", bench(perplexity=9.3), bench(perplexity=8.5),
     "pass", 9.35),
    ("validation.perplexity <= baseline * 1.1", bench(perplexity=9.4), bench(perplexity=8.5),
     "fail", 9.35),
    ("validation.perplexity <= baseline - 0.5", bench(perplexity=7.9), bench(perplexity=8.5),
     "pass", 8.0),
    ("validation.perplexity <= baseline - 0.5", bench(perplexity=8.1), bench(perplexity=8.5),
     "fail", 8.0),
])
def test_every_rule_kind_passes_and_fails(tmp_path, rule, results, baseline, status, needed):
    outcome = check(tmp_path, rule, results, baseline)
    assert outcome.status == status
    assert outcome.needed == pytest.approx(needed)
    assert (outcome.margin >= -1e-9) == (status == "pass")


def test_data_form_takes_the_direction_from_the_registry(tmp_path):
    """max_regression on loss and perplexity (lower is better) allows them to rise."""
    rules = rules_from_data([{"metric": "validation.loss", "max_regression": 0.1},
                             {"metric": "validation.perplexity",
                              "max_regression": {"relative": 0.05}}], "r.yaml")
    results = load_results(write_json(tmp_path / "r.json", bench(perplexity=9.0)))
    baseline = load_results(write_json(tmp_path / "b.json", bench(perplexity=8.5)))
    loss, ppl = check_rules(rules, results, baseline)
    assert (loss.status, loss.needed) == ("pass", pytest.approx(2.24))
    assert (ppl.status, ppl.needed) == ("fail", pytest.approx(8.925))
    assert ppl.rule.text == "validation.perplexity <= baseline * 1.05"


@pytest.mark.parametrize(("rule", "suggestion"), [
    ("validation.perplexity >= baseline - 0.5", "'validation.perplexity <= baseline + 0.5'"),
    ("validation.loss >= baseline * 0.98", "'validation.loss <= baseline * 1.02'"),
    ("code.pass@1 <= baseline + 0.02", "'code.pass@1 >= baseline - 0.02'"),
    ("code.pass@1 <= base", "'code.pass@1 >= base'"),
])
def test_an_operator_against_the_direction_is_refused_with_the_right_rule(rule, suggestion):
    with pytest.raises(ConfigError) as error:
        parse_rule(rule)
    assert str(error.value).startswith(f"rule {rule!r}: ") and suggestion in str(error.value)


def test_absolute_rules_are_literal_whatever_the_direction(tmp_path):
    assert check(tmp_path, "validation.perplexity >= 8", bench(perplexity=8.5)).status == "pass"
    assert check(tmp_path, "code.pass@1 <= 0.9", bench(0.34)).status == "pass"


def test_alias_resolves_to_the_name_in_the_results(tmp_path, capsys):
    write_json(tmp_path / "run" / "metrics.json", RUN_METRICS)
    # a baseline from before the metric rename still says validation.f1
    write_json(tmp_path / "old.json", {"validation": {"f1": 0.86}})
    code, out, _ = gate(capsys, tmp_path / "run", "--baseline", tmp_path / "old.json",
                        "--rule", "validation.f1 >= 0.84",
                        "--rule", "validation.f1 >= base + 0.05",
                        "--rule", "validation.f1 >= baseline - 0.02")
    assert code == 1
    assert "validation.f1 >= 0.84: validation.f1 is validation.f1_binary" in out
    record = json.loads((tmp_path / "run" / "gate.json").read_text())
    rows = [(r["resolved"], r["value"], r["reference"], r["result"]) for r in record["rules"]]
    assert rows == [("validation.f1_binary", 0.85, None, "pass"),
                    ("validation.f1_binary", 0.85, 0.81, "fail"),    # the trivial predictor
                    ("validation.f1_binary", 0.85, 0.86, "pass")]


# ---------------------------------------------------------------- the command


def test_pass_writes_gate_json_with_inputs_and_exit_0(tmp_path, capsys):
    results = write_json(tmp_path / "bench.json", bench(0.34))
    baseline = write_json(tmp_path / "prev.json", bench(0.35))
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump([{"metric": "code.pass@1", "min": 0.3,
                                      "max_regression": {"absolute": 0.02}}]))
    out_dir = tmp_path / "out"
    code, out, err = gate(capsys, results, "--baseline", baseline, "--rules", rules,
                          "--rule", "code.pass@1 >= base + 0.05", "--output", out_dir)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[1].split() == ["rule", "value", "baseline", "needed", "margin", "result"]
    assert lines[3].split() == ["code.pass@1", ">=", "baseline", "-", "0.02", "0.3400",
                                "0.3500", "0.3300", "+0.0100", "pass"]
    assert "0.2000 (base)" in lines[4]
    assert f"gate: pass, 3 rules -> {out_dir / 'gate.json'}" in out
    record = json.loads((out_dir / "gate.json").read_text())
    assert record["verdict"] == "pass" and record["rules_passed"] == 3
    sha = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (results, baseline, rules)}
    assert record["inputs"]["results"] == [{"path": str(results), "sha256": sha[results]}]
    assert record["inputs"]["baseline"][0]["sha256"] == sha[baseline]
    assert record["inputs"]["rules"][0]["sha256"] == sha[rules]
    assert record["rules"][1]["margin"] == 0.01 and record["rules"][1]["direction"] == "higher"


def test_rules_from_a_section_of_a_params_file(tmp_path, capsys):
    results = write_json(tmp_path / "bench.json", bench(0.34))
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"profiles": {"smoke": {"gate": [
        "code.pass@1 >= 0.3", "code.pass@1 >= baseline - 0.02"]}}, "other": 1}))
    code, out, err = gate(capsys, results, "--baseline", tmp_path / "none.json",
                          "--rules", f"{params}:profiles.smoke.gate")
    assert (code, err) == (0, "") and "gate: pass" in out
    record = json.loads((tmp_path / "gate.json").read_text())
    assert record["inputs"]["rules"] == [{
        "path": str(params), "key": "profiles.smoke.gate",
        "sha256": hashlib.sha256(params.read_bytes()).hexdigest()}]
    assert [r["rule"] for r in record["rules"]] == ["code.pass@1 >= 0.3",
                                                    "code.pass@1 >= baseline - 0.02"]


def test_a_failed_rule_exits_1_and_says_which(tmp_path, capsys):
    results = write_json(tmp_path / "bench.json", bench(0.30, perplexity=9.5))
    baseline = write_json(tmp_path / "prev.json", bench(0.34, perplexity=8.5))
    code, out, _ = gate(capsys, results, "--baseline", baseline,
                        "--rule", "code.pass@1 >= baseline - 0.02",
                        "--rule", "validation.perplexity <= baseline + 0.5",
                        "--rule", "docstring.rougeL >= 0.4")
    assert code == 1
    assert ("gate: FAIL, 2 of 3 rules failed (code.pass@1 >= baseline - 0.02, "
            "validation.perplexity <= baseline + 0.5)") in out
    record = json.loads((tmp_path / "gate.json").read_text())
    assert [r["result"] for r in record["rules"]] == ["fail", "fail", "pass"]
    assert record["rules"][0]["margin"] == pytest.approx(-0.02)


def test_first_run_without_a_baseline(tmp_path, capsys):
    results = write_json(tmp_path / "bench.json", bench(0.34))
    baseline = tmp_path / "baselines" / "bilora.json"
    args = ("--rule", "code.pass@1 >= 0.3", "--rule", "code.pass@1 >= baseline - 0.02")
    code, out, _ = gate(capsys, results, "--baseline", baseline, *args)
    assert code == 0
    assert "skipped" in out and "no baseline yet" in out
    assert "the absolute and base-model rules decided (1 rules against the baseline skipped)" \
        in out
    assert "pass --promote to make these results the baseline" in out
    assert not baseline.exists()
    record = json.loads((tmp_path / "gate.json").read_text())
    assert record["baseline"] == {"path": str(baseline), "stored": False, "promoted": False}
    # an absolute rule still decides: failing it without a baseline is exit 1, no baseline
    code, _, _ = gate(capsys, results, "--baseline", baseline, "--rule", "code.pass@1 >= 0.5",
                      "--promote")
    assert code == 1 and not baseline.exists()
    code, out, _ = gate(capsys, results, "--baseline", baseline, *args, "--promote")
    assert code == 0 and "these results are the first baseline" in out
    stored = json.loads(baseline.read_text())
    assert stored["kind"] == "loralab.baseline" and stored["metrics"]["code.pass@1"] == 0.34
    code, out, _ = gate(capsys, results, "--baseline", baseline, *args)
    assert code == 0 and "skipped" not in out


def test_exit_codes_through_the_real_command(tmp_path):
    results = write_json(tmp_path / "bench.json", bench(0.34))
    ok = run_cli("gate", results, "--baseline", tmp_path / "b.json", "--rule",
                 "code.pass@1 >= 0.3")
    assert ok.returncode == 0, ok.stderr
    failed = run_cli("gate", results, "--baseline", tmp_path / "b.json", "--rule",
                     "code.pass@1 >= 0.5")
    assert failed.returncode == 1 and "gate: FAIL" in failed.stdout
    bad = run_cli("gate", results, "--baseline", tmp_path / "b.json", "--rule",
                  "code.pass@1 > 0.5")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().startswith("loralab: error: rule 'code.pass@1 > 0.5' is "
                                         "malformed") and len(bad.stderr.splitlines()) == 1


# ---------------------------------------------------------------- bad inputs
# (case id, files to write {name: content}, argv with {tmp} for the folder, message parts).
# Every case: exit 2, one line on stderr naming the file / rule / metric, no traceback,
# nothing written. The publish cases are in test_publish.py's table.

RULES_BAD_KEY = "- {metric: code.pass@1, minimum: 0.3}\n"
RULES_BAD_CHANGE = "- {metric: code.pass@1, max_regression: {absolut: 0.02}}\n"
RULES_NEGATIVE = "- {metric: code.pass@1, max_regression: -0.02}\n"
RULES_BAD_TEXT = "- {metric: code.pass@1, min: 0.3}\n- 'code.pass@1 >> 0.3'\n"
BENCH = json.dumps(bench())
OLD = json.dumps(bench(0.34))
NO_ROUGE = json.dumps({"code": {"pass@1": 0.3}})
G = ["gate", "{tmp}/bench.json", "--baseline", "{tmp}/old.json"]

BAD_INPUTS = [
    ("malformed rule", {"bench.json": BENCH}, [*G, "--rule", "code.pass@1 => 0.3"],
     ["rule 'code.pass@1 => 0.3' is malformed", "expected METRIC >= NUMBER"]),
    ("unknown reference", {"bench.json": BENCH}, [*G, "--rule", "code.pass@1 >= last - 0.1"],
     ["rule 'code.pass@1 >= last - 0.1' is malformed"]),
    ("no rules", {"bench.json": BENCH}, G, ["no rules: give --rule"]),
    ("metric missing from results", {"bench.json": BENCH},
     [*G, "--rule", "code.pass@5 >= 0.3"],
     ["'code.pass@5' is not in these results", "bench.json", "code.pass@1, code.code_failures"]),
    ("metric missing from baseline", {"bench.json": BENCH, "old.json": NO_ROUGE},
     [*G, "--rule", "docstring.rougeL >= baseline - 0.02"],
     ["'docstring.rougeL' is not in the baseline", "old.json", "it holds: code.pass@1"]),
    ("no base numbers", {"bench.json": NO_ROUGE},
     [*G, "--rule", "code.pass@1 >= base + 0.05"],
     ["'base.code.pass@1' is not in the results", "no base numbers at all"]),
    ("operator against the direction", {"bench.json": BENCH},
     [*G, "--rule", "validation.perplexity >= baseline - 0.5"],
     ["lower-is-better", "'validation.perplexity <= baseline + 0.5'"]),
    ("no direction for a baseline rule", {"bench.json": BENCH},
     [*G, "--rule", "code.speed >= baseline - 1"], ["no direction for 'speed'"]),
    ("results missing", {}, [*G, "--rule", "code.pass@1 >= 0.3"],
     ["results", "bench.json does not exist"]),
    ("results not JSON", {"bench.json": "{'code': 1"}, [*G, "--rule", "code.pass@1 >= 0.3"],
     ["results", "bench.json is not valid JSON", "line 1"]),
    ("results a list", {"bench.json": "[1, 2]"}, [*G, "--rule", "code.pass@1 >= 0.3"],
     ["bench.json holds a JSON list"]),
    ("results without numbers", {"bench.json": '{"a": "x"}'},
     [*G, "--rule", "code.pass@1 >= 0.3"], ["bench.json holds no numeric metrics"]),
    ("folder without results", {"empty/x.txt": ""},
     ["gate", "{tmp}/empty", "--baseline", "{tmp}/old.json", "--rule", "a.loss <= 1"],
     ["results folder", "empty holds no results file", "metrics.json"]),
    ("folder with two results", {"two/metrics.json": json.dumps(RUN_METRICS),
                                 "two/best.json": json.dumps(GRID_BEST)},
     ["gate", "{tmp}/two", "--baseline", "{tmp}/old.json", "--rule", "a.loss <= 1"],
     ["holds several results files (metrics.json, best.json)"]),
    ("baseline not JSON", {"bench.json": BENCH, "old.json": "nope"},
     [*G, "--rule", "code.pass@1 >= baseline"], ["baseline", "old.json is not valid JSON"]),
    ("rules file unknown key", {"bench.json": BENCH, "r.yaml": RULES_BAD_KEY},
     [*G, "--rules", "{tmp}/r.yaml"], ["r.yaml: rules[0].minimum: unknown key"]),
    ("rules file bad change", {"bench.json": BENCH, "r.yaml": RULES_BAD_CHANGE},
     [*G, "--rules", "{tmp}/r.yaml"],
     ["r.yaml: rules[0].max_regression: expected a number >= 0, {absolute: N}"]),
    ("rules file negative change", {"bench.json": BENCH, "r.yaml": RULES_NEGATIVE},
     [*G, "--rules", "{tmp}/r.yaml"], ["rules[0].max_regression: expected a number >= 0"]),
    ("rules file bad text rule", {"bench.json": BENCH, "r.yaml": RULES_BAD_TEXT},
     [*G, "--rules", "{tmp}/r.yaml"],
     ["r.yaml: rules[1]: rule 'code.pass@1 >> 0.3' is malformed"]),
    ("rules file not YAML", {"bench.json": BENCH, "r.yaml": "- [a\n"},
     [*G, "--rules", "{tmp}/r.yaml"], ["rules file", "r.yaml is not valid YAML"]),
    ("rules file empty", {"bench.json": BENCH, "r.yaml": "rules: []\n"},
     [*G, "--rules", "{tmp}/r.yaml"], ["r.yaml: expected a non-empty list of rules"]),
    ("rules file missing", {"bench.json": BENCH}, [*G, "--rules", "{tmp}/nope.yaml"],
     ["rules file", "nope.yaml cannot be read"]),
    ("promote over a run's metrics.json", {"bench.json": BENCH,
                                           "run/metrics.json": json.dumps(RUN_METRICS)},
     ["gate", "{tmp}/bench.json", "--baseline", "{tmp}/run/metrics.json", "--rule",
      "code.pass@1 >= 0.3", "--promote"],
     ["--promote would replace", "metrics.json, which is not a baseline written by"]),
    ("promote into a folder", {"bench.json": BENCH, "bases/x.txt": ""},
     ["gate", "{tmp}/bench.json", "--baseline", "{tmp}/bases", "--rule",
      "code.pass@1 >= 0.3", "--promote"], ["--promote needs --baseline to be a file"]),
]


@pytest.mark.parametrize(("files", "argv", "parts"), [c[1:] for c in BAD_INPUTS],
                         ids=[c[0] for c in BAD_INPUTS])
def test_bad_inputs(tmp_path, capsys, files, argv, parts):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    before = tree(tmp_path)
    capsys.readouterr()
    code = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("loralab: error: ")
    for part in parts:
        assert part in err
    assert tree(tmp_path) == before
