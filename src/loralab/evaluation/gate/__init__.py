"""The quality gate (`loralab gate`): metric rules against a stored baseline and the base model.

    results.py   any loralab results file -> flat `scope.metric` numbers
    rules.py     the rule grammar (text and YAML data) -> `Rule` objects
    check.py     rules x results x baseline -> outcomes (direction from the metric registry)
    report.py    the terminal table and gate.json
    baseline.py  reading the baseline, promotion with history
    command.py   the command: exit 0 pass, 1 a rule failed, 2 user error

See docs/gate.md.
"""
