"""The catalogue of bad input: every row must exit 2 with one line that names the key path,
file, row or column, print no traceback, and leave the output folder absent or byte-identical.

Rows run in-process through `loralab.cli.main` (fast); the rows in SUBPROCESS run as a real
`python -m loralab.cli` too. Add rows whenever a new command lands.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from bad_input_cases import CASES, Case

from loralab.cli import main

from conftest import ner_rows, sentiment_rows, write_jsonl

SUBPROCESS = {"config/unknown-key", "data/missing-train-file", "fs/output-is-a-file",
              "cli/predict-batch-size-zero", "grid/shard-out-of-range", "causal/qlora-on-cpu",
              "config/bool-for-number", "data/label-missing", "config/inf-epochs",
              "cli/predict-truncated-weights", "data/read-fails", "cli/predict-empty-text"}


@dataclass
class Env:
    root: Path
    values: dict[str, str] = field(default_factory=dict)

    def fill(self, text: str) -> str:
        for key, value in self.values.items():
            text = text.replace("{" + key + "}", value)
        return text


def write_config(path: Path, raw: dict) -> str:
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_bert, tiny_llama) -> Env:
    """Models, data, configs and trained adapters every row can refer to as {name}."""
    root = tmp_path_factory.mktemp("bad-inputs")
    train = write_jsonl(root / "train.jsonl", sentiment_rows(64, 0))
    dev = write_jsonl(root / "dev.jsonl", sentiment_rows(32, 1))
    pairs = [{"text": r["text"], "text_pair": r["text"], "label": r["label"]}
             for r in sentiment_rows(64, 2)]
    pair_file = write_jsonl(root / "pairs.jsonl", pairs)
    ner_train = write_jsonl(root / "ner.jsonl", ner_rows(32, 0))
    lm_rows = [{"message": f"order {w}", "answer": w} for w in ("pizza", "sushi", "tea") * 8]
    lm_train = write_jsonl(root / "lm.jsonl", lm_rows)
    fast = {"epochs": 1, "batch_size": 16, "logging_steps": 5}
    base = {"model": {"name": str(tiny_bert), "max_length": 32}, "lora": {"r": 4},
            "training": fast, "data": {"train": str(train), "validation": str(dev)}}
    values = {"model": str(tiny_bert), "llama": str(tiny_llama), "train": str(train),
              "dev": str(dev), "pairs": str(pair_file), "ner": str(ner_train),
              "lm": str(lm_train)}
    values["cfg"] = write_config(root / "cfg.yaml", base)
    values["ner_cfg"] = write_config(root / "ner.yaml", {
        **base, "model": {**base["model"], "task": "token_classification"},
        "data": {"train": str(ner_train), "validation": str(ner_train)}})
    values["lm_cfg"] = write_config(root / "lm.yaml", {
        "model": {"name": str(tiny_llama), "task": "causal_lm", "max_length": 64},
        "lora": {"r": 4}, "training": fast,
        "data": {"train": str(lm_train), "validation": str(lm_train),
                 "prompt_template": "{message}", "response_template": "{answer}"}})
    for name, data in (("adapter", {"train": str(train), "validation": str(dev)}),
                       ("pair_adapter", {"train": str(pair_file), "validation": str(pair_file)})):
        run = root / name
        config = write_config(root / f"{name}.yaml", {**base, "name": name, "data": data})
        assert main(["train", config, "--output", str(run), "--no-progress"]) == 0
        values[name] = str(next(run.glob("lora_*")))
    finished = root / "finished"
    assert main(["train", values["cfg"], "--output", str(finished), "--no-progress"]) == 0
    values["finished"] = str(finished)
    return Env(root, values)


def snapshot(path: Path) -> dict[str, bytes] | None:
    if not path.exists():
        return None
    if path.is_file():
        return {"": path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


def prepare(case: Case, env: Env, tmp_path: Path) -> tuple[list[str], Path]:
    values = dict(env.values, tmp=str(tmp_path), out=str(tmp_path / "out"))
    case_env = Env(env.root, values)
    for name, content in case.files.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(case_env.fill(content), encoding="utf-8")
        values[name] = str(target)
    if case.setup is not None:
        case.setup(tmp_path, values)
    argv = [case_env.fill(arg) for arg in case.argv]
    return argv, Path(case_env.fill(case.watch))


def check(case: Case, code: int, err: str, before, after) -> None:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2, f"{case.id}: exit {code}\n{err[-2000:]}"
    assert "Traceback" not in err, f"{case.id}: traceback\n{err[-2000:]}"
    assert len(lines) == 1 and lines[0].startswith("loralab: error: "), f"{case.id}: {err}"
    assert case.matches(lines[0]), f"{case.id}: {lines[0]!r} does not match {case.expect!r}"
    assert after == before, f"{case.id}: the output folder changed"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_cleanly(case, env, tmp_path, capsys):
    argv, watched = prepare(case, env, tmp_path)
    before = snapshot(watched)
    code = main(argv)
    check(case, code, capsys.readouterr().err, before, snapshot(watched))


@pytest.mark.parametrize("case", [c for c in CASES if c.id in SUBPROCESS],
                         ids=sorted(SUBPROCESS))
def test_bad_input_in_a_real_process(case, env, tmp_path):
    argv, watched = prepare(case, env, tmp_path)
    before = snapshot(watched)
    result = subprocess.run([sys.executable, "-m", "loralab.cli", *argv], capture_output=True,
                            text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    check(case, result.returncode, result.stderr, before, snapshot(watched))


def test_the_catalogue_covers_every_area():
    areas = {c.id.split("/")[0] for c in CASES}
    assert areas >= {"config", "data", "grid", "cli", "fs", "causal"}
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)
    assert json.dumps(sorted(SUBPROCESS))  # every subprocess row names a real case
    assert SUBPROCESS <= {c.id for c in CASES}
