"""`loralab gate RESULTS --baseline BASELINE [--rules FILE | --rule TEXT]... [--promote]`.

Exit codes: 0 every rule passed (or was skipped for want of a baseline), 1 a rule failed,
2 a user error (bad rule, missing metric, unreadable file: nothing is written).
"""

from __future__ import annotations

from pathlib import Path

from loralab.atomic import atomic_write_json
from loralab.errors import UserError
from loralab.evaluation.gate.baseline import check_promotable, promote, read_baseline
from loralab.evaluation.gate.check import FAIL, SKIPPED, Outcome, check_rules, passed
from loralab.evaluation.gate.report import gate_record, gate_summary, table_text
from loralab.evaluation.gate.results import load_results
from loralab.evaluation.gate.rules import BASELINE, Rule, load_rules_file, parse_rule

GATE_FILE = "gate.json"
EXIT_PASS, EXIT_FAIL = 0, 1


def collect_rules(rule_texts: list[str], rule_files: list[Path]) -> list[Rule]:
    rules = [rule for path in rule_files for rule in load_rules_file(path)]
    rules += [parse_rule(text) for text in rule_texts]
    if not rules:
        raise UserError("no rules: give --rule 'METRIC >= ...' or --rules RULES.yaml")
    return rules


def run_gate(results_path: str, baseline_path: str, rule_texts: list[str],
             rule_files: list[str], *, promote_on_pass: bool = False,
             output: str | None = None) -> int:
    """Check the rules, print the table, write gate.json, promote on a pass if asked."""
    files = [Path(p) for p in rule_files]
    rules = collect_rules(rule_texts, files)
    results = load_results(results_path, role="results")
    baseline_file = Path(baseline_path)
    if promote_on_pass:
        check_promotable(baseline_file)
    baseline = read_baseline(baseline_file)
    outcomes = check_rules(rules, results, baseline)
    print(f"gate: {results.path} against "
          f"{baseline.path if baseline else f'{baseline_file} (no baseline yet)'}")
    print(table_text(outcomes), end="")
    ok = passed(outcomes)
    promoted = False
    if ok and promote_on_pass:
        promote(baseline_file, results, gate_summary(outcomes))
        promoted = True
    out = Path(output) if output else results.path.parent
    atomic_write_json(out / GATE_FILE, gate_record(outcomes, results, baseline_file, baseline,
                                                   files, promoted))
    print(verdict_line(outcomes, out / GATE_FILE))
    for line in baseline_lines(outcomes, baseline_file, baseline is not None, promoted,
                               promote_on_pass):
        print(line)
    return EXIT_PASS if ok else EXIT_FAIL


def verdict_line(outcomes: list[Outcome], gate_file: Path) -> str:
    failed = [o for o in outcomes if o.status == FAIL]
    if failed:
        return (f"gate: FAIL, {len(failed)} of {len(outcomes)} rules failed "
                f"({', '.join(o.rule.text for o in failed)}) -> {gate_file}")
    return f"gate: pass, {len(outcomes)} rules -> {gate_file}"


def baseline_lines(outcomes: list[Outcome], path: Path, stored: bool, promoted: bool,
                   asked: bool) -> list[str]:
    lines = []
    if not stored:
        skipped = sum(o.status == SKIPPED and o.rule.kind == BASELINE for o in outcomes)
        lines.append(f"gate: no baseline at {path} yet: the absolute and base-model rules "
                     f"decided ({skipped} rules against the baseline skipped)")
    if promoted:
        what = "the first baseline" if not stored else "the new baseline (the old one is in " \
            f"{path.stem}.history.jsonl)"
        lines.append(f"gate: promoted: these results are {what} -> {path}")
    elif asked:
        lines.append(f"gate: not promoted: the gate failed, {path} is unchanged")
    elif not stored:
        lines.append("gate: pass --promote to make these results the baseline")
    return lines
