"""`loralab publish ADAPTER_DIR --to DIR|hf:OWNER/NAME [--name NAME] [--gate gate.json]`.

ADAPTER_DIR is one adapter folder (it holds adapter_config.json; a PEFT multi-adapter folder
counts as one and is copied whole), or a folder holding adapter folders (a run folder, a
multi-adapter run). The adapters are copied into the models folder as a new version:

    DIR/NAME-vN/                 a single adapter: its files, plus manifest.json
    DIR/NAME-vN/<adapter>/...    several adapters: one folder each, plus manifest.json

N is one more than the highest version of NAME in DIR: an existing version is never
replaced. The version folder is written under a temp name and renamed into place
(loralab.atomic), while a lock on DIR/.publish.lock keeps two publishers from taking the same
N: a failed or killed publish leaves no half folder. manifest.json: name, version, time,
loralab version, the source (path, the run its metrics.json describes), every adapter (base
model, task, LoRA settings, weights files), the sha256 of every published file, the run's
flat metrics (see evaluation.gate.results) and the gate result when --gate is given (a
failed gate is refused).

`--to hf:OWNER/NAME` uploads the same layout with huggingface_hub (create_repo +
upload_folder) using the token of HF_TOKEN or the cached login; without one it stops before
anything is uploaded.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock

from loralab import __version__
from loralab.atomic import atomic_directory, atomic_write_json
from loralab.errors import UserError
from loralab.evaluation.gate.results import RUN_METRICS, load_results, read_json, sha256_file

ADAPTER_CONFIG = "adapter_config.json"
MANIFEST = "manifest.json"
HF_PREFIX = "hf:"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


@dataclass
class Source:
    path: Path
    adapters: list[Path]      # [path] when ADAPTER_DIR is itself the adapter
    run_metrics: Path | None  # the metrics.json of the run the adapters come from

    @property
    def single(self) -> bool:
        return self.adapters == [self.path]


def find_source(adapter_dir: str | Path) -> Source:
    path = Path(adapter_dir)
    if not path.is_dir():
        raise UserError(f"adapter folder {path} does not exist")
    if (path / ADAPTER_CONFIG).is_file():
        adapters = [path]
    else:
        adapters = sorted(p for p in path.iterdir() if (p / ADAPTER_CONFIG).is_file())
    if not adapters:
        raise UserError(f"{path} holds no adapter (no {ADAPTER_CONFIG} in it or its "
                        "sub-folders)")
    metrics = next(((p / RUN_METRICS).resolve() for p in (path, path.parent)
                    if (p / RUN_METRICS).is_file()), None)
    return Source(path.resolve(), [a.resolve() for a in adapters], metrics)


def default_name(source: Source) -> str:
    if not source.single and source.run_metrics is not None:
        name = read_json(source.run_metrics, "run metrics").get("name")
        if isinstance(name, str) and NAME.fullmatch(name):
            return name
    return source.path.name


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise UserError(f"--name {name!r}: use letters, digits, '.', '_' and '-', starting "
                        "with a letter or digit")
    return name


def read_gate(path: str | None) -> dict[str, Any] | None:
    if path is None:
        return None
    file = Path(path)
    if not file.is_file():
        raise UserError(f"--gate {file} does not exist")
    gate = read_json(file, "gate file")
    if not isinstance(gate, dict) or gate.get("verdict") not in ("pass", "fail"):
        raise UserError(f"--gate {file} is not a gate.json written by `loralab gate`")
    if gate["verdict"] != "pass":
        raise UserError(f"--gate {file} records a failed gate ({failed_rules(gate)}): not "
                        "publishing")
    return {"path": str(file.resolve()), "sha256": sha256_file(file), **gate}


def failed_rules(gate: dict[str, Any]) -> str:
    """"2 of 3 rules failed", from the counts or, in a gate summary without them, its rules."""
    rules = [r for r in gate.get("rules") or [] if isinstance(r, dict)]
    failed = gate.get("rules_failed")
    if not isinstance(failed, int):
        failed = sum(1 for r in rules if r.get("status", r.get("result")) == "fail")
    if rules:
        return f"{failed} of {len(rules)} rules failed"
    return f"{failed} rule{'s' if failed != 1 else ''} failed"


def copy_adapters(source: Source, dest: Path) -> None:
    """Copy the adapter folder(s) into `dest` (which exists); UserError on a copy failure."""
    skip = shutil.ignore_patterns(".*.tmp", MANIFEST)
    for adapter in source.adapters:
        target = dest if source.single else dest / adapter.name
        try:
            shutil.copytree(adapter, target, ignore=skip, dirs_exist_ok=True)
        except (shutil.Error, OSError) as exc:
            detail = exc.args[0][0][2] if isinstance(exc, shutil.Error) and exc.args \
                and isinstance(exc.args[0], list) else exc
            raise UserError(f"cannot copy adapter {adapter}: {detail}") from None


def adapter_entry(name: str, folder: Path, version: Path) -> dict[str, Any]:
    """One published adapter: `folder` is its copy inside the version folder `version`."""
    config = read_json(folder / ADAPTER_CONFIG, "adapter config")
    labels = folder / "label_mapping.json"
    mapping = read_json(labels, "label mapping") if labels.is_file() else {}
    weights = sorted(str(p.relative_to(version)) for p in folder.rglob("*")
                     if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    return {"name": name, "path": str(folder.relative_to(version)),
            "base_model": config.get("base_model_name_or_path"),
            "task": mapping.get("task") or config.get("task_type"),
            "peft_type": config.get("peft_type"), "r": config.get("r"),
            "lora_alpha": config.get("lora_alpha"),
            "target_modules": config.get("target_modules"), "weights": weights}


def manifest(folder: Path, source: Source, name: str, version: int | None, published_as: str,
             gate: dict[str, Any] | None) -> dict[str, Any]:
    """The manifest of a staged version folder (its sha256 are of the copies)."""
    copies = {a.name: folder if source.single else folder / a.name for a in source.adapters}
    files = {str(p.relative_to(folder)): sha256_file(p)
             for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}
    run = None
    metrics = None
    if source.run_metrics is not None:
        results = load_results(source.run_metrics, role="run metrics")
        metrics = results.metrics
        raw = results.raw
        run = {"path": str(source.run_metrics.parent), "metrics_file": str(source.run_metrics),
               "name": raw.get("name"), "task": raw.get("task"), "model": raw.get("model")}
    return {"name": name, "version": version, "published_as": published_as,
            "published_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "loralab_version": __version__,
            "source": {"path": str(source.path), "run": run},
            "adapters": [adapter_entry(n, copy, folder) for n, copy in copies.items()],
            "files": files, "metrics": metrics, "gate": gate}


def next_version(models: Path, name: str) -> int:
    pattern = re.compile(rf"{re.escape(name)}-v(\d+)")
    taken = [int(m[1]) for p in models.iterdir() if (m := pattern.fullmatch(p.name))]
    return max(taken, default=0) + 1


def publish_local(source: Source, models: Path, name: str, gate: dict[str, Any] | None) -> Path:
    if models.exists() and not models.is_dir():
        raise UserError(f"--to {models} is a file, not a models folder")
    models.mkdir(parents=True, exist_ok=True)
    with FileLock(str(models / ".publish.lock")):
        version = next_version(models, name)
        target = models / f"{name}-v{version}"
        if target.exists():  # cannot happen under the lock; never replace a version
            raise UserError(f"{target} already exists")
        with atomic_directory(target) as tmp:
            copy_adapters(source, tmp)
            atomic_write_json(tmp / MANIFEST, manifest(tmp, source, name, version,
                                                       target.name, gate))
    return target


def run_publish(adapter_dir: str, to: str, *, name: str | None = None,
                gate: str | None = None) -> int:
    source = find_source(adapter_dir)
    gate_record = read_gate(gate)
    if to.startswith(HF_PREFIX):
        repo_id = to[len(HF_PREFIX):]
        url = publish_hub(source, repo_id, check_name(name or repo_id.rsplit("/", 1)[-1]),
                          gate_record)
        print(f"published {len(source.adapters)} adapter(s) to {to}: {url}")
        return 0
    target = publish_local(source, Path(to), check_name(name or default_name(source)),
                           gate_record)
    print(f"published {len(source.adapters)} adapter(s) as {target.name} -> {target} "
          f"({MANIFEST})")
    return 0


def hub_token() -> str:
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise UserError("publishing to the Hugging Face Hub needs a token: set HF_TOKEN or run "
                        "`hf auth login`; nothing was uploaded")
    return token


def publish_hub(source: Source, repo_id: str, name: str, gate: dict[str, Any] | None) -> str:
    """Upload the version layout to the hub repo OWNER/NAME; returns the commit URL."""
    if not REPO_ID.fullmatch(repo_id):
        raise UserError(f"--to hf:{repo_id}: expected hf:OWNER/NAME")
    token = hub_token()
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import HTTPError

    if constants.HF_HUB_OFFLINE:
        raise UserError("HF_HUB_OFFLINE is set: unset it to upload to the Hugging Face Hub; "
                        "nothing was uploaded")
    with tempfile.TemporaryDirectory(prefix="loralab-publish-") as tmp:
        stage = Path(tmp) / name
        stage.mkdir()
        copy_adapters(source, stage)
        atomic_write_json(stage / MANIFEST, manifest(stage, source, name, None,
                                                     f"{HF_PREFIX}{repo_id}", gate))
        api = HfApi(token=token)
        try:
            api.create_repo(repo_id, repo_type="model", exist_ok=True)
            info = api.upload_folder(repo_id=repo_id, folder_path=stage, repo_type="model",
                                     commit_message=f"loralab publish {name}")
        except (HTTPError, OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"upload to hf:{repo_id} failed: {first}") from None
    return str(getattr(info, "commit_url", info))

