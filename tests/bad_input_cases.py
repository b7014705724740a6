"""The rows of tests/test_bad_inputs.py: a command line, the files it needs, and what its one
error line must say. `{name}` refers to the test's environment (models, data, configs, trained
adapters), to `{tmp}` / `{out}` of the row, or to one of the row's own files."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Case:
    id: str
    argv: list[str]
    expect: str                                   # regex the error line must contain
    files: dict[str, str | bytes] = field(default_factory=dict)
    setup: Callable[[Path, dict[str, str]], None] | None = None
    watch: str = "{out}"                          # the output folder that must not change

    def matches(self, line: str) -> bool:
        return re.search(self.expect, line) is not None


def train(*sets: str, config: str = "{cfg}") -> list[str]:
    argv = ["train", config, "--output", "{out}", "--no-progress"]
    for item in sets:
        argv += ["--set", item]
    return argv


def data(file: str, *sets: str) -> list[str]:
    return train(f"data.train={{{file}}}", f"data.validation={{{file}}}", *sets)


def grid(file: str, *extra: str) -> list[str]:
    return ["grid", f"{{{file}}}", "--output", "{out}", *extra]


GRID = "base: {cfg}\nseeds: [0]\n"


def occupied(tmp: Path, values: dict[str, str]) -> None:
    """{out} held by another live process (a sleeping child holding the run lock)."""
    import subprocess
    import sys
    import time

    out = Path(values["out"])
    child = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path\n"
        "from loralab.training.run_lock import hold_run_lock\n"
        "with hold_run_lock(Path(sys.argv[1])):\n"
        "    print('held', flush=True); time.sleep(600)\n"), str(out)],
        stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    values["pid"] = str(child.pid)
    import atexit

    atexit.register(child.kill)
    time.sleep(0.1)


def file_output(tmp: Path, values: dict[str, str]) -> None:
    Path(values["out"]).write_text("not a folder\n")


def finished_export(tmp: Path, values: dict[str, str]) -> None:
    """{out} already holds a finished `loralab export`."""
    from loralab.cli import main

    assert main(["export", values["adapter"], "--format", "peft", "--output",
                 values["out"]]) == 0


def broken_adapter(change: Callable[[Path], None]) -> Callable[[Path, dict[str, str]], None]:
    """A copy of {adapter} as {bad}, changed by `change(folder)`."""
    def setup(tmp: Path, values: dict[str, str]) -> None:
        import shutil

        folder = tmp / "bad-adapter"
        shutil.copytree(values["adapter"], folder)
        change(folder)
        values["bad"] = str(folder)
    return setup


def truncate_weights(folder: Path) -> None:
    weights = folder / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])


def not_safetensors(folder: Path) -> None:
    (folder / "adapter_model.safetensors").write_text("these are not weights\n")


def other_rank(folder: Path) -> None:
    import json

    config = json.loads((folder / "adapter_config.json").read_text())
    config["r"] = config["r"] * 2
    (folder / "adapter_config.json").write_text(json.dumps(config))


def other_shape(folder: Path) -> None:
    """One LoRA A with more input features than the base layer has (rank kept)."""
    import torch
    from safetensors.torch import load_file, save_file

    weights = load_file(folder / "adapter_model.safetensors")
    key = next(k for k in sorted(weights) if k.endswith("lora_A.weight"))
    rank, features = weights[key].shape
    weights[key] = torch.zeros(rank, features + 8)
    save_file(weights, folder / "adapter_model.safetensors", metadata={"format": "pt"})


def plain_peft(folder: Path) -> None:
    """What a PEFT folder trained elsewhere holds: no loralab config, no label mapping."""
    for name in ("loralab_config.yaml", "label_mapping.json"):
        (folder / name).unlink()


def unreadable_data(tmp: Path, values: dict[str, str]) -> None:
    """{mem.jsonl}: a file whose read fails (EIO), also for root: /proc/self/mem at 0."""
    (tmp / "mem.jsonl").symlink_to("/proc/self/mem")
    values["mem.jsonl"] = str(tmp / "mem.jsonl")


MULTI = ("model: {name: '{llama}', task: causal_lm, max_length: 64}\n"
         "data: {train: '{lm}', validation: '{lm}', prompt_template: '{message}', "
         "response_template: '{answer}'}\n"
         "training: {epochs: 1, batch_size: 16}\n")


def tune(space: str, *extra: str, trials: str = "2") -> list[str]:
    return ["tune", "{cfg}", "--space", f"{{{space}}}", "--trials", trials, "--output",
            "{out}", *extra]


SPACE = "params:\n  training.learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2}\n"


def other_study(tmp: Path, values: dict[str, str]) -> None:
    """{out} holds a study made by another config."""
    import json

    out = Path(values["out"])
    out.mkdir(parents=True)
    (out / "tune.json").write_text(json.dumps({"config": "other", "space": [],
                                               "metric": "accuracy"}))


CASES: list[Case] = [
    # ------------------------------------------------------------------ tune (loralab tune)
    Case("tune/unknown-key", tune("s.yaml"), r"s\.yaml: lora\.alpah=.*unknown key",
         files={"s.yaml": "params:\n  lora.alpah: {type: int, low: 2, high: 8}\n"}),
    Case("tune/empty-choice", tune("s.yaml"), r"lora\.r: a choice needs a non-empty list",
         files={"s.yaml": "params:\n  lora.r: {type: choice, values: []}\n"}),
    Case("tune/low-above-high", tune("s.yaml"),
         r"training\.learning_rate: low \(0\.1\) is greater than high",
         files={"s.yaml": "params:\n  training.learning_rate: {type: float, low: 0.1, "
                          "high: 0.001}\n"}),
    Case("tune/log-of-zero", tune("s.yaml"),
         r"training\.weight_decay: log: true needs a positive low bound",
         files={"s.yaml": "params:\n  training.weight_decay: {type: float, low: 0, "
                          "high: 0.1, log: true}\n"}),
    Case("tune/value-the-schema-refuses", tune("s.yaml"),
         r"training\.learning_rate=2\.0: training\.learning_rate: .*less than or equal",
         files={"s.yaml": "params:\n  training.learning_rate: {type: float, low: 0.01, "
                          "high: 2}\n"}),
    Case("tune/key-the-task-lacks", tune("s.yaml"),
         r"data\.packing=true: .*data\.packing is for model\.task=causal_lm",
         files={"s.yaml": "params:\n  data.packing: {type: choice, values: [true, false]}\n"}),
    Case("tune/int-bound-not-whole", tune("s.yaml"), r"lora\.r: low: expected a whole number",
         files={"s.yaml": "params:\n  lora.r: {type: int, low: 2.5, high: 8}\n"}),
    Case("tune/unknown-type", tune("s.yaml"), r"lora\.r: expected a mapping with type:",
         files={"s.yaml": "params:\n  lora.r: {type: range, low: 2, high: 8}\n"}),
    Case("tune/no-params", tune("s.yaml"), r"params: must map at least one config key",
         files={"s.yaml": "pruner: median\n"}),
    Case("tune/missing-space", ["tune", "{cfg}", "--space", "{tmp}/none.yaml", "--trials", "2",
                                "--output", "{out}"], r"--space .*none\.yaml: no such file"),
    Case("tune/trials-zero", tune("s.yaml", trials="0"), r"--trials must be at least 1 \(got 0",
         files={"s.yaml": SPACE}),
    Case("tune/jobs-zero", tune("s.yaml", "--jobs", "0"), r"--jobs must be at least 1 \(got 0",
         files={"s.yaml": SPACE}),
    Case("tune/metric-not-produced", tune("s.yaml", "--metric", "pearson"),
         r"--metric: 'pearson' is not a metric.*accuracy", files={"s.yaml": SPACE}),
    Case("tune/study-of-another-config", tune("s.yaml"),
         r"holds a study of another config, space, metric; pass --overwrite",
         files={"s.yaml": SPACE}, setup=other_study),
    Case("tune/folder-holds-something-else", tune("s.yaml"), r"is not empty and holds no study",
         files={"s.yaml": SPACE, "out/notes.txt": "mine\n"}),
    Case("tracking/unwritable-uri", train("training.report_to=[mlflow]",
                                          "training.tracking_uri=sqlite:///{f}/mlflow.db"),
         r"training\.tracking_uri .*/f is a file, not a folder", files={"f": "x\n"}),
    Case("tracking/unknown-tracker", train("training.report_to=[comet]"),
         r"training\.report_to\.0: .*'tensorboard', 'mlflow', 'trackio' or 'wandb'"),
    Case("config/min-steps-zero", train("training.min_steps=0"), r"training\.min_steps"),
    Case("config/on-collapse-unknown", train("training.on_collapse=retry"),
         r"training\.on_collapse: .*'restart', 'warn' or 'stop'"),
    # ------------------------------------------------------------------ config
    Case("config/unknown-key", train("lora.alpah=8"),
         r"lora\.alpah: unknown key; did you mean lora\.alpha\?"),
    Case("config/bool-for-number", train("lora.r=true"), r"lora\.r: .*(bool|number)"),
    Case("config/text-for-number", train("training.learning_rate=fast"),
         r"training\.learning_rate"),
    Case("config/zero-epochs", train("training.epochs=0"), r"training\.epochs"),
    Case("config/missing-file", ["train", "{tmp}/nope.yaml", "--output", "{out}"],
         r"config file not found: .*nope\.yaml"),
    Case("config/folder-as-config", ["train", "{tmp}", "--output", "{out}"],
         r"is a folder, not a config file"),
    Case("config/invalid-yaml", ["train", "{bad.yaml}", "--output", "{out}"],
         r"bad\.yaml: not valid YAML \(line \d+", files={"bad.yaml": "lora:\n  r: [1\n"}),
    Case("config/top-level-list", ["train", "{list.yaml}", "--output", "{out}"],
         r"top level must be a mapping", files={"list.yaml": "- 1\n- 2\n"}),
    Case("config/set-without-value", train("lora.r"), r"--set 'lora\.r': expected KEY=VALUE"),
    Case("config/set-into-a-value", train("lora.r.x=1"), r"lora\.r is a value, not a section"),
    Case("config/layer-out-of-range", train("lora.layers=[7]"),
         r"lora\.layers: layer 7 does not exist"),
    Case("config/unknown-target", train("lora.target_modules=[nope]"),
         r"lora\.target_modules: 'nope' matches no linear layer"),
    Case("config/rank-above-layer-size", train("lora.r=64"), r"lora\.r=64 .*larger than"),
    Case("config/metric-not-produced", train("training.metric_for_best=pearson"),
         r"training\.metric_for_best: 'pearson' is not a metric.*accuracy"),
    Case("config/unknown-metric", train("training.metric_for_best=f2"),
         r"training\.metric_for_best"),
    Case("config/steps-need-eval-steps", train("training.eval_strategy=steps"),
         r"training\.eval_strategy=steps needs training\.eval_steps"),
    Case("config/labels-num-labels", train("model.labels=[a, b]", "model.num_labels=3"),
         r"model\.labels has 2 names but model\.num_labels is 3"),
    Case("config/missing-model-folder", train("model.name={tmp}/no-model"),
         r"cannot load model .*no-model.*no such folder"),
    Case("config/weighted-fp16", train("lora.method=weighted", "training.precision=fp16"),
         r"lora\.method=weighted .*training\.precision=fp16"),
    Case("config/weighted-dora", train("lora.method=weighted", "lora.use_dora=true"),
         r"lora\.use_dora"),
    Case("config/unfreeze-too-many", train("training.unfreeze_top_layers=9"),
         r"training\.unfreeze_top_layers=9"),
    Case("config/causal-key-on-encoder", train("data.packing=true"),
         r"data\.packing is for model\.task=causal_lm"),
    Case("config/max-length-too-small", train("model.max_length=4"), r"model\.max_length"),
    Case("config/validation-fraction", train("data.validation_fraction=1.5"),
         r"data\.validation_fraction"),
    Case("config/loss-terms-on-encoder", train("training.loss=[{type: kd}]"),
         r"training\.loss"),
    Case("config/layers-zero", train("lora.layers=0"), r"lora\.layers: 0 adapts no layer"),
    Case("config/unknown-task", train("model.task=summarize"), r"model\.task"),
    Case("config/mapping-for-text", train("data.prompt_template={x}"),
         r"data\.prompt_template: .*mapping"),
    # numbers that trained to NaN (exit 0) or overflowed (traceback) before every float was
    # finite and every numeric key had a range (issue 20)
    Case("config/inf-alpha", train("lora.alpha=.inf"), r"lora\.alpha: .*finite number"),
    Case("config/huge-alpha", train("lora.alpha=1e308"), r"lora\.alpha: .*less than or equal"),
    Case("config/inf-learning-rate", train("training.learning_rate=.inf"),
         r"training\.learning_rate: .*finite number"),
    Case("config/inf-weight-decay", train("training.weight_decay=.inf"),
         r"training\.weight_decay: .*finite number"),
    Case("config/inf-head-learning-rate", train("training.head_learning_rate=.inf"),
         r"training\.head_learning_rate: .*finite number"),
    Case("config/inf-epochs", train("training.epochs=.inf"), r"training\.epochs: .*finite"),
    Case("config/inf-warmup", train("training.warmup=.inf"), r"training\.warmup: .*finite"),
    Case("config/negative-seed", train("training.seed=-1"), r"training\.seed: .*greater than"),
    Case("config/huge-threads", train("training.threads=100000000000000000000"),
         r"training\.threads: .*less than or equal to 1024"),
    Case("config/max-length-above-positions", train("model.max_length=100000"),
         r"model\.max_length=100000 is more than .* has positions for \(128 tokens\)"),
    Case("config/duplicate-key", ["train", "{dup.yaml}", "--output", "{out}"],
         r"dup\.yaml: .*line 4.*the key 'r' appears twice .*lines 2 and 4",
         files={"dup.yaml": "lora:\n  r: 4\n  alpha: 8\n  r: 8\n"}),
    Case("config/duplicate-key-in-set", train("lora={r: 2, r: 4}"),
         r"--set 'lora=\{r: 2, r: 4\}': the key 'r' appears twice"),
    # found by tests/test_config_fuzz.py
    Case("config/inf-shown-as-null", ["config", "show", "--set", "lora.reg_tolerance=.inf"],
         r"lora\.reg_tolerance: .*finite number"),
    Case("config/name-with-slash", train("name=a/b"),
         r"name: 'a/b' cannot be part of a folder name"),
    Case("config/empty-labels", train("model.labels=[]"), r"model\.labels is empty"),
    # ------------------------------------------------------------------ data
    Case("data/missing-train-file", train("data.train={tmp}/none.jsonl"),
         r"file .*none\.jsonl.*file not found \(set by data\.train\)"),
    Case("data/train-is-a-folder", train("data.train={tmp}"), r"is a folder, not a file"),
    Case("data/glob-matches-nothing", train("data.train={tmp}/x-*.parquet"),
         r"no file matches this pattern \(set by data\.train\)"),
    Case("data/unknown-suffix", data("rows.dat"), r"rows\.dat.*cannot tell the format",
         files={"rows.dat": "a,b\n"}),
    Case("data/empty-file", data("empty.tsv"), r"empty\.tsv: the file is empty",
         files={"empty.tsv": ""}),
    Case("data/header-only", data("head.tsv"), r"head\.tsv: no data rows",
         files={"head.tsv": "text\tlabel\n"}),
    Case("data/label-missing", data("nolabel.tsv"),
         r"nolabel\.tsv, row 2, column 'label': the label is missing",
         files={"nolabel.tsv": "text\tlabel\ngood film\tpos\nbad film\t\n"}),
    Case("data/undeclared-label", data("labels.csv", "model.labels=[neg, pos]"),
         r"labels\.csv, row 2, column 'label': label 'meh' is not one of the labels",
         files={"labels.csv": "text,label\ngood,pos\nokay,meh\nbad,neg\n"}),
    Case("data/regression-text-label", data("reg.csv", "model.task=regression"),
         r"reg\.csv, row 2, column 'label': the label 'lots' is not a number",
         files={"reg.csv": "text,label\ngood,4.5\nbad,lots\n"}),
    Case("data/tsv-field-count", data("fields.tsv"), r"fields\.tsv, row 2: expected 2 fields",
         files={"fields.tsv": "text\tlabel\ngood\tpos\nbad\tneg\textra\n"}),
    Case("data/invalid-jsonl", data("broken.jsonl"), r"broken\.jsonl, row 2: not valid JSON",
         files={"broken.jsonl": '{"text": "a", "label": "x"}\n{"text": \n'}),
    Case("data/not-utf8", data("latin.csv"), r"latin\.csv: not UTF-8",
         files={"latin.csv": b"text,label\ncaf\xe9,pos\nbad,neg\n"}),
    Case("data/duplicate-csv-column", data("dup.csv"), r"dup\.csv.*column 'text'.*twice",
         files={"dup.csv": "text,label,text\na,pos,b\nc,neg,d\n"}),
    Case("data/duplicate-json-key", data("dup.jsonl"), r"dup\.jsonl, row 1.*'label'.*twice",
         files={"dup.jsonl": '{"text": "a", "label": "pos", "label": "neg"}\n'
                             '{"text": "b", "label": "neg"}\n'}),
    Case("data/mapped-column-absent", data("rows.csv", "data.columns.text=sentence"),
         r"rows\.csv, column 'sentence': data\.columns\.text names a column that is not there",
         files={"rows.csv": "text,label\na,pos\nb,neg\n"}),
    Case("data/no-text-column", data("notext.csv"), r"notext\.csv: no text column found",
         files={"notext.csv": "body,label\na,pos\nb,neg\n"}),
    Case("data/tokens-tags-mismatch", data("tok.jsonl", "model.task=token_classification"),
         r"tok\.jsonl, row 1, column 'tags': 2 tokens but 1 tags",
         files={"tok.jsonl": '{"tokens": ["a", "b"], "tags": ["O"]}\n'}),
    Case("data/conll-for-sequence", data("a.conll"), r"data\.format conll|gives words with BIO",
         files={"a.conll": "EU B-ORG\n"}),
    Case("data/squad-format-for-encoder", train("data.format=squad"),
         r"data\.format squad gives prompt/response records"),
    Case("data/unknown-split-name", train("data.splits={dev: dev}"),
         r"data\.splits: unknown split 'dev'"),
    Case("data/one-row-no-validation", train("data.train={one.jsonl}", "data.validation=null"),
         r"cannot split a validation set off 1 training row",
         files={"one.jsonl": '{"text": "a", "label": "pos"}\n'}),
    Case("data/reversed-span", data("spans.jsonl", "model.task=token_classification",
                                    "data.format=presidio"),
         r"spans\.jsonl, row 1.*reversed",
         files={"spans.jsonl": '{"full_text": "John lives here", "spans": [{"entity_type": '
                               '"PERSON", "start_position": 4, "end_position": 0}]}\n'}),
    Case("data/missing-text-pair", data("pairs.jsonl"),
         r"pairs\.jsonl, row 2, column 'text_pair': empty second text",
         files={"pairs.jsonl": '{"text": "a", "text_pair": "b", "label": "pos"}\n'
                               '{"text": "c", "text_pair": null, "label": "neg"}\n'}),
    Case("data/one-class-only", data("oneclass.jsonl"), r"1 distinct label",
         files={"oneclass.jsonl": '{"text": "a", "label": "pos"}\n{"text": "b", "label": '
                                  '"pos"}\n'}),
    Case("data/read-fails", data("mem.jsonl", "data.format=jsonl"),
         r"mem.*: cannot read the file: Input/output error", setup=unreadable_data),
    # ------------------------------------------------------------------ causal LMs
    Case("causal/template-field-missing", train("data.prompt_template='{question}'",
                                                config="{lm_cfg}"),
         r"lm\.jsonl, row 1, column 'question': data\.prompt_template uses \{question\}"),
    Case("causal/response-too-long", train("data.truncation=error", "model.max_length=8",
                                           config="{lm_cfg}"),
         r"lm\.jsonl, row 1.*more than model\.max_length=8"),
    Case("causal/generate-without-metrics", train("eval.generate=true", config="{lm_cfg}"),
         r"eval\.generate needs data\.metrics"),
    Case("causal/weighted", train("lora.method=weighted", config="{lm_cfg}"),
         r"lora\.method=weighted is for encoder tasks"),
    Case("causal/qlora-on-cpu", train("model.quantization=4bit", config="{lm_cfg}"),
         r"model\.quantization=4bit \(QLoRA\) needs a CUDA GPU"),
    Case("causal/two-teachers", train("training.loss=[{type: ce}, {type: kd, teacher: {llama}},"
                                      " {type: kd, teacher: {model}}]", config="{lm_cfg}"),
         r"training\.loss: give at most one kd teacher"),
    Case("causal/metric-not-produced", train("training.metric_for_best=pass@1",
                                             config="{lm_cfg}"),
         r"training\.metric_for_best: 'pass@1' is not a metric"),
    Case("causal/unfreeze", train("training.unfreeze_top_layers=1", config="{lm_cfg}"),
         r"training\.unfreeze_top_layers is for encoder tasks"),
    Case("causal/gradient-checkpointing-not-a-choice",
         train("training.gradient_checkpointing=sometimes", config="{lm_cfg}"),
         r"training\.gradient_checkpointing: expected true, false or auto \(got 'sometimes'\)"),
    # ------------------------------------------------------------------ grid
    Case("grid/empty-file", grid("g.yaml"), r"g\.yaml", files={"g.yaml": ""}),
    Case("grid/shard-out-of-range", grid("g.yaml", "--shard", "3/2"),
         r"--shard '3/2': i must be in 0\.\.n-1", files={"g.yaml": GRID}),
    Case("grid/shard-garbage", grid("g.yaml", "--shard", "half"), r"--shard 'half'",
         files={"g.yaml": GRID}),
    Case("grid/jobs-zero", grid("g.yaml", "--jobs", "0"), r"--jobs.*>= 1, got 0",
         files={"g.yaml": GRID}),
    Case("grid/dry-run-bad-shard", grid("g.yaml", "--dry-run", "--shard", "2/2"), r"--shard",
         files={"g.yaml": GRID}),
    Case("grid/dry-run-bad-jobs", grid("g.yaml", "--dry-run", "--jobs", "-1"), r"--jobs",
         files={"g.yaml": GRID}),
    Case("grid/empty-seeds", grid("g.yaml"), r"seeds.*empty",
         files={"g.yaml": "base: {cfg}\nseeds: []\n"}),
    Case("grid/empty-axis", grid("g.yaml"), r"grid\.lora\.r is an empty list",
         files={"g.yaml": "base: {cfg}\ngrid: {lora.r: []}\n"}),
    Case("grid/duplicate-dataset-names", grid("g.yaml"),
         r"share a label: 'a' \(2 entries\).*distinct name",
         files={"g.yaml": "base: {cfg}\ndatasets:\n  - {name: a, data.train: {train}}\n"
                          "  - {name: a, data.train: {dev}}\n"}),
    Case("grid/key-varied-twice", grid("g.yaml"), r"lora\.r is varied by both",
         files={"g.yaml": "base: {cfg}\ngrid: {lora.r: [2, 4]}\nzip: {lora.r: [2, 4]}\n"}),
    Case("grid/zip-unequal", grid("g.yaml"), r"the lists of a zip group must have the same",
         files={"g.yaml": "base: {cfg}\nzip: {lora.r: [2, 4], lora.alpha: [8]}\n"}),
    Case("grid/unknown-grid-key", grid("g.yaml"), r"unknown grid key",
         files={"g.yaml": "base: {cfg}\nsweep: {lora.r: [2]}\n"}),
    Case("grid/invalid-run", grid("g.yaml"), r"invalid run\(s\) in the grid: .*lora\.dropout",
         files={"g.yaml": "base: {cfg}\ngrid: {lora.dropout: [0.1, 2.0]}\n"}),
    Case("grid/exclude-unknown-key", grid("g.yaml"), r"exclude: 'colour'",
         files={"g.yaml": "base: {cfg}\ngrid: {lora.r: [2, 4]}\nexclude: [{colour: red}]\n"}),
    Case("grid/missing-grid-file", grid("none"), r"grid file not found"),
    Case("grid/missing-data-file", grid("g.yaml"), r"none\.jsonl.*file not found",
         files={"g.yaml": "base: {cfg}\nset: {data.train: {tmp}/none.jsonl}\n"}),
    # ------------------------------------------------------------------ other commands
    Case("cli/predict-batch-size-zero",
         ["predict", "{adapter}", "--text", "a", "--batch-size", "0"], r"--batch-size"),
    Case("cli/predict-batch-size-negative",
         ["predict", "{adapter}", "--text", "a", "--batch-size", "-3"], r"--batch-size"),
    Case("cli/predict-empty-file", ["predict", "{adapter}", "--file", "{empty.txt}"],
         r"empty\.txt.*no inputs", files={"empty.txt": "\n\n"}),
    Case("cli/predict-pair-on-single-text",
         ["predict", "{adapter}", "--text", "a", "--text-pair", "b"],
         r"trained on single texts: give no second text"),
    Case("cli/predict-single-on-pair-adapter", ["predict", "{pair_adapter}", "--text", "a"],
         r"trained on text pairs: give a second text"),
    Case("cli/predict-no-input", ["predict", "{adapter}"], r"give --text .* or --file"),
    Case("cli/predict-not-an-adapter", ["predict", "{tmp}", "--text", "a"],
         r"is not an adapter folder"),
    Case("cli/predict-missing-file", ["predict", "{adapter}", "--file", "{tmp}/none.txt"],
         r"none\.txt: file not found"),
    # one input rule for predict and serve (loralab.tasks.inputs), issue 20
    Case("cli/predict-empty-text", ["predict", "{adapter}", "--text", ""],
         r"--text:1: the text is empty or only whitespace"),
    Case("cli/predict-blank-text", ["predict", "{adapter}", "--text", "   "],
         r"--text:1: the text is empty or only whitespace"),
    Case("cli/predict-empty-pair", ["predict", "{pair_adapter}", "--text", "a", "--text-pair",
                                    ""], r"--text:1: the second text .* is empty"),
    Case("cli/predict-empty-pair-on-single", ["predict", "{adapter}", "--text", "a",
                                              "--text-pair", " "],
         r"--text:1: the second text .* is empty"),
    Case("cli/predict-nul-byte", ["predict", "{adapter}", "--file", "{nul.jsonl}"],
         r"nul\.jsonl:1: the text holds a NUL byte",
         files={"nul.jsonl": '{"text": "good\\u0000film"}\n'}),
    Case("cli/predict-undecodable-text", ["predict", "{adapter}", "--text", "caf\udcff"],
         r"--text:1: the text is not valid Unicode"),
    # corrupt or inconsistent adapter files (models.adapter_check), issue 20
    Case("cli/predict-truncated-weights", ["predict", "{bad}", "--text", "a"],
         r"adapter_model\.safetensors: not a readable safetensors file, truncated",
         setup=broken_adapter(truncate_weights)),
    Case("cli/predict-not-safetensors", ["predict", "{bad}", "--text", "a"],
         r"adapter_model\.safetensors: not a readable safetensors file",
         setup=broken_adapter(not_safetensors)),
    Case("cli/predict-rank-mismatch", ["predict", "{bad}", "--text", "a"],
         r"has LoRA rank 4 .* but adapter_config\.json says r=8",
         setup=broken_adapter(other_rank)),
    Case("cli/predict-shape-mismatch", ["predict", "{bad}", "--text", "a"],
         r"adapter_model\.safetensors: the weights do not fit the base model \(size mismatch",
         setup=broken_adapter(other_shape)),
    Case("cli/eval-truncated-weights", ["eval", "{bad}"],
         r"not a readable safetensors file", setup=broken_adapter(truncate_weights)),
    Case("cli/resume-truncated-checkpoint", train() + ["--resume"],
         r"state\.pt: not a readable checkpoint .*truncated or corrupt",
         files={"out/checkpoint/state.pt": b"PK\x03\x04" + bytes(40)}),
    # empty path arguments
    Case("cli/output-empty", ["train", "{cfg}", "--output", "", "--no-progress"],
         r"argument --output/-o: expected a value, got the empty string", watch="runs"),
    Case("cli/config-empty", ["train", "", "--output", "{out}"],
         r"argument config: expected a value"),
    Case("cli/predict-file-empty-path", ["predict", "{adapter}", "--file", " "],
         r"argument --file: expected a value"),
    Case("cli/eval-output-empty", ["eval", "{adapter}", "--output", ""],
         r"argument --output/-o: expected a value"),
    # messages that misled (issue 20)
    Case("cli/eval-run-folder-of-one-adapter", ["eval", "{adapter}/.."],
         r"is not an adapter folder but holds one, lora_.*: give --adapter NAME, or the "
         r"adapter folder itself"),
    Case("cli/eval-plain-peft-without-config", ["eval", "{bad}"],
         r"names no data to evaluate on .*give --config", setup=broken_adapter(plain_peft)),
    Case("cli/eval-no-test-split", ["eval", "{adapter}", "--split", "test"],
         r"the data has no 'test' split"),
    Case("cli/eval-baseline-encoder", ["eval", "{adapter}", "--baseline"], r"--baseline"),
    Case("cli/eval-model-needs-config", ["eval", "--model", "{llama}"],
         r"--model needs --config"),
    Case("cli/eval-model-encoder", ["eval", "--model", "{model}", "--config", "{cfg}"],
         r"no trained head"),
    Case("cli/resume-without-output", ["train", "{cfg}", "--resume"],
         r"--resume needs --output"),
    Case("cli/resume-and-overwrite", train() + ["--resume", "--overwrite"],
         r"--resume .* --overwrite"),
    Case("cli/synth-too-few", ["data", "synth", "json-extraction", "--n", "5", "--out",
                               "{out}"], r"--n must be at least 10"),
    Case("cli/runs-list-not-a-grid", ["runs", "list", "{tmp}"], r"not a grid output folder"),
    # ------------------------------------------------------------------ filesystem
    Case("fs/output-is-a-file", train(), r"is a file", setup=file_output),
    Case("fs/output-under-a-file", ["train", "{cfg}", "--output", "{tmp}/f/run"],
         r"f.*is a file", files={"f": "x\n"}, watch="{tmp}/f"),
    Case("fs/eval-output-is-a-file", ["eval", "{adapter}", "--output", "{out}"], r"is a file",
         setup=file_output),
    Case("fs/finished-run", ["train", "{cfg}", "--output", "{finished}", "--no-progress"],
         r"already holds a finished run", watch="{finished}"),
    Case("fs/locked-run", train(), r"is being written by process \d+", setup=occupied),
    # ------------------------------------------------------------------ later commands
    Case("multi/lora-and-adapters", ["train", "{multi.yaml}", "--output", "{out}"],
         r"give either lora: .* or adapters:", files={"multi.yaml": MULTI + "lora: {r: 4}\n"
                                                      "adapters: [{name: code, lora: {r: 4}}]\n"}),
    Case("multi/duplicate-names", ["train", "{multi.yaml}", "--output", "{out}"],
         r"adapters: the name 'code' is used by 2 entries",
         files={"multi.yaml": MULTI + "adapters: [{name: code}, {name: code}]\n"}),
    Case("multi/reserved-name", ["train", "{multi.yaml}", "--output", "{out}"],
         r"adapters\.0\.name: .*reserved",
         files={"multi.yaml": MULTI + "adapters: [{name: default}]\n"}),
    Case("multi/encoder-task", ["train", "{enc.yaml}", "--output", "{out}"],
         files={"enc.yaml": "model: {name: '{model}'}\ndata: {train: '{train}', validation: "
                            "'{dev}'}\nadapters: [{name: code}]\n"},
         expect=r"adapters: several adapters on one base are for model\.task causal_lm"),
    Case("multi/predict-adapter-on-single",
         ["predict", "{adapter}", "--adapter", "code", "--text", "a"],
         r"is not a multi-adapter folder"),
    Case("data-export/unknown-key",
         ["data", "export", "{cfg}", "--set", "lora.alpah=8", "--out", "{out}"],
         r"lora\.alpah: unknown key"),
    Case("data-export/missing-section", ["data", "export", "{cfg}:nope", "--out", "{out}"],
         r"nope"),
    Case("gate/missing-metric", ["gate", "{results.json}", "--baseline", "{tmp}/base.json",
                                 "--rule", "code.pass@1 >= 0.3", "--output", "{out}"],
         r"code\.pass@1.*validation\.f1_binary", files={"results.json":
                                                      '{"validation.f1_binary": 0.8}\n'}),
    Case("gate/bad-rule", ["gate", "{results.json}", "--baseline", "{tmp}/base.json",
                           "--rule", "validation.f1_binary >> 0.3", "--output", "{out}"],
         r"rule 'validation\.f1_binary >> 0\.3'",
         files={"results.json": '{"validation.f1_binary": 0.8}\n'}),
    Case("publish/not-an-adapter", ["publish", "{tmp}", "--to", "{out}"], r"adapter"),
    Case("export/unknown-format", ["export", "{adapter}", "--format", "tflite", "--output",
                                   "{out}"], r"--format: unknown value 'tflite'"),
    Case("export/not-an-adapter", ["export", "{tmp}", "--format", "merged", "--output", "{out}"],
         r"adapter"),
    Case("export/finished-export", ["export", "{adapter}", "--format", "peft", "--output",
                                    "{out}"], r"--overwrite", setup=finished_export),
    Case("verify/not-an-export", ["verify", "{tmp}"], r"export"),
    Case("serve/missing-models-dir", ["serve", "{tmp}/missing"], r"MODELS_DIR .*missing"),
    # issue 20 item 4: the feedback database is checked before the server starts
    Case("serve/feedback-db-folder", ["serve", "{tmp}", "--feedback-db", "{tmp}"],
         r"--feedback-db .* is a folder"),
    Case("serve/feedback-db-not-sqlite", ["serve", "{tmp}", "--feedback-db", "{notes.txt}"],
         r"--feedback-db .*notes\.txt is not an SQLite database",
         files={"notes.txt": "just some notes\n"}),
    Case("serve/max-request-bytes-zero", ["serve", "{tmp}", "--max-request-bytes", "0"],
         r"--max-request-bytes"),
    Case("feedback/missing-db", ["feedback", "export", "{tmp}/none.sqlite", "--out",
                                 "{out}/pairs.jsonl"], r"none\.sqlite"),
]


# ---------------------------------------------------------------------------- the server
# The rows of tests/test_serving_api.py: (what, route, JSON body (bytes: sent as they are),
# status, words of the one-line message). BASE is the served base encoder, PAIRS an adapter
# trained on text pairs, "sentiment" one trained on single texts; the server runs with
# --max-rows 40 --max-input-chars 300 --max-request-bytes 20000.
SENTIMENT = "lora_sentiment_bert_r4"
REQUESTS = [
    ("unknown adapter", "/v1/classify", {"adapter": "nope", "inputs": ["a"]}, 404,
     "unknown adapter or model 'nope'"),
    ("no inputs", "/v1/classify", {"adapter": "three", "inputs": []}, 422, "no inputs"),
    ("empty text", "/v1/classify", {"adapter": "three", "inputs": ["  "]}, 422,
     "input 1: the text is empty or only whitespace"),
    ("too long", "/v1/classify", {"adapter": "three", "inputs": ["a" * 301]}, 413,
     "301 characters"),
    ("too many rows", "/v1/classify", {"adapter": "three", "inputs": ["a"] * 41}, 413,
     "41 inputs is more than the limit of 40"),
    ("pair for a single-text adapter", "/v1/classify",
     {"adapter": SENTIMENT, "inputs": [{"text": "a", "text_pair": "b"}]}, 422,
     "trained on single texts"),
    ("pair for token tagging", "/v1/classify",
     {"adapter": "ner", "inputs": [{"text": "a", "text_pair": "b"}]}, 422,
     "trained on single texts"),
    ("headless base", "/v1/classify", {"adapter": "BASE", "inputs": ["a"]}, 400,
     "without a trained head"),
    ("wrong type", "/v1/classify", {"adapter": "three", "inputs": "a"}, 422, "inputs"),
    ("missing field", "/v1/classify", {"inputs": ["a"]}, 422, "adapter: Field required"),
    ("unknown field", "/v1/classify", {"adapter": "three", "inputs": ["a"], "x": 1}, 422,
     "x: Extra inputs are not permitted"),
    ("generation on an encoder", "/v1/completions", {"model": "three", "prompt": "a"}, 400,
     "use /v1/classify"),
    ("unknown model", "/v1/chat/completions",
     {"model": "nope", "messages": [{"role": "user", "content": "a"}]}, 404, "unknown"),
    ("bad rating", "/v1/feedback", {"response_id": "x", "rating": "meh"}, 422, "rating"),
    ("unknown response", "/v1/feedback", {"response_id": "cls-0", "rating": "up"}, 404,
     "unknown or expired response id"),
    ("empty batch", "/api/v1/classify/batch", {"requests": []}, 422, "requests"),
    # issue 20 item 5: one input rule with `loralab predict` (tasks.check_prediction_inputs)
    ("empty text_pair", "/v1/classify",
     {"adapter": "PAIRS", "inputs": [{"text": "a", "text_pair": ""}]}, 422,
     "the second text (text_pair) is empty"),
    ("blank text_pair on a single-text adapter", "/v1/classify",
     {"adapter": SENTIMENT, "inputs": [{"text": "a", "text_pair": "  "}]}, 422,
     "the second text (text_pair) is empty"),
    ("single text for a pair adapter", "/v1/classify", {"adapter": "PAIRS", "inputs": ["a"]},
     422, "trained on text pairs: give a second text"),
    ("empty text in the batch route", "/api/v1/classify/batch",
     {"requests": [{"adapter": "three", "inputs": ["ok"]},
                   {"adapter": SENTIMENT, "inputs": [""]}]}, 422, "the text is empty"),
    ("no inputs in the batch route", "/api/v1/classify/batch",
     {"requests": [{"adapter": "three", "inputs": []}]}, 422, "no inputs"),
    ("NUL byte in a text", "/v1/classify", {"adapter": "three", "inputs": ["a\u0000b"]}, 422,
     "inputs.0: the string holds a NUL byte"),
    ("lone surrogate in a text", "/v1/classify",
     b'{"adapter": "three", "inputs": [{"text": "caf\\udcff"}]}', 422,
     "inputs.0.text: the string is not valid Unicode"),
    ("NUL byte in an adapter path", "/v1/adapters", {"path": "three\u0000x"}, 422,
     "path: the string holds a NUL byte"),
    ("NUL byte in a chat message", "/v1/chat/completions",
     {"model": "three", "messages": [{"role": "user", "content": "\u0000"}]}, 422,
     "messages.0.content: the string holds a NUL byte"),
    ("NUL byte in a field name", "/v1/feedback", {"response_id": "x", "rating": "up",
                                                  "a\u0000": 1}, 422, "NUL byte"),
    ("blank embeddings input", "/v1/embeddings", {"model": "BASE", "input": [" "]}, 422,
     "input 1 is empty or only whitespace"),
    ("invalid UTF-8 body", "/v1/classify", b'{"adapter": "three", "inputs": ["\xff"]}', 422,
     "not valid JSON"),
    # found by tests/test_serving_fuzz.py (schemathesis) and fixed
    ("empty prompt list", "/v1/completions", {"model": "three", "prompt": []}, 422,
     "no prompts"),
    # issue 18 fault 5: limits before parsing
    ("body over --max-request-bytes", "/v1/classify",
     {"adapter": "three", "inputs": ["a" * 250] * 100}, 413, "--max-request-bytes"),
    # issue 16 item 3: response_format is checked before the model is looked up (no model
    # loads for a bad format), so these rows name an encoder adapter
    ("unknown response_format type", "/v1/chat/completions",
     {"model": "three", "messages": [{"role": "user", "content": "a"}],
      "response_format": {"type": "yaml"}}, 400,
     "response_format.type: 'yaml' is not one of 'text', 'json_object', 'json_schema'"),
    ("json_schema without json_schema", "/v1/completions",
     {"model": "three", "prompt": "a", "response_format": {"type": "json_schema"}}, 400,
     "response_format.json_schema is missing"),
    ("json_schema without schema", "/v1/chat/completions",
     {"model": "three", "messages": [{"role": "user", "content": "a"}],
      "response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, 400,
     "response_format.json_schema.schema is missing"),
    ("response_format schema not a JSON Schema", "/v1/completions",
     {"model": "three", "prompt": "a", "response_format": {
         "type": "json_schema", "json_schema": {"name": "x", "schema": {"minimum": "1"}}}},
     400, "response_format.json_schema.schema is not a JSON Schema: '1' is not of type"),
    ("response_format schema the engine cannot compile", "/v1/chat/completions",
     {"model": "three", "messages": [{"role": "user", "content": "a"}],
      "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {
          "type": "object", "if": {"required": ["a"]}, "then": {"required": ["b"]}}}}}, 400,
     'cannot constrain decoding to this schema: Unimplemented keys: ["if", "then"]'),
]
