"""loralab: LoRA adapters for encoder classifiers and small causal LMs, from one YAML file."""

__version__ = "0.1.0"
