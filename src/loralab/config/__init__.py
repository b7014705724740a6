"""loralab's configuration: the typed schema, YAML loading with `--set` / `--set-from`
overrides, validation messages that name the key path, several adapters in one config.

    schema.py           Config: the sections together and the rules that span them
    sections.py         model, lora, training (loss terms), data (columns), eval
    adapter_entries.py  one `adapters:` entry and the refusals of the list
    adapters.py         each entry resolved into a single-adapter Config
    judge.py            the optional `judge:` section
    section.py          the base of every section (unknown keys refused)
    messages.py         "lora.alpah: unknown key; did you mean lora.alpha?"
    yaml_loader.py      YAML 1.2 reading, FILE:KEY sections, dotted overrides
    loading.py          load_config / validate_config / dump_config
    exported_data.py    `train --data DIR`: read what `loralab data export` wrote

Everything a caller needs is importable from `loralab.config` itself.
"""

from loralab.config.adapters import adapter_configs
from loralab.config.loading import (
    dump_config,
    load_config,
    read_config_mapping,
    resolve_data_paths,
    resolve_path,
    validate_config,
)
from loralab.config.schema import CAUSAL_ONLY, Config
from loralab.config.sections import (
    WEIGHTED_ONLY,
    ColumnsConfig,
    DataConfig,
    EvalConfig,
    LoraConfig,
    LossTerm,
    MetricSuite,
    ModelConfig,
    TaskType,
    TrainingConfig,
)
from loralab.config.yaml_loader import (
    apply_override,
    flatten,
    overrides_from,
    parse_yaml,
    read_section,
    read_yaml_mapping,
    set_dotted,
    split_section,
)

__all__ = [
    "CAUSAL_ONLY", "WEIGHTED_ONLY", "ColumnsConfig", "Config", "DataConfig", "EvalConfig",
    "LoraConfig", "LossTerm", "MetricSuite", "ModelConfig", "TaskType", "TrainingConfig",
    "adapter_configs", "apply_override", "dump_config", "flatten", "load_config",
    "overrides_from", "parse_yaml", "read_config_mapping", "read_section",
    "read_yaml_mapping", "resolve_data_paths", "resolve_path", "set_dotted", "split_section",
    "validate_config",
]
