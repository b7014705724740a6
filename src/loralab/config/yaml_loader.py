"""YAML for configs: YAML 1.2 booleans, sections of a bigger file, dotted `a.b=value` overrides.

    read_yaml_mapping(path)              the top-level mapping of a YAML file
    split_section("params.yaml:train")   -> (Path("params.yaml"), "train")
    read_section("params.yaml:train")    the mapping under `train` (DVC's own `file:key` form)
    apply_override(raw, "lora.r=8")      one --set override (the value is parsed as YAML)
    set_dotted(raw, "adapters.code.lora.r", 8)   lists of named entries are addressed by name
    overrides_from("params.yaml:smoke")  a mapping of dotted keys, as (key, value) overrides
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from loralab.errors import ConfigError


class YamlLoader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false are booleans, so `eval_strategy: no` stays "no";
    a key given twice in one mapping is an error naming both lines (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        refuse_duplicate_keys(self, node)
        return super().construct_mapping(node, deep=deep)


def refuse_duplicate_keys(loader: yaml.SafeLoader, node: yaml.MappingNode) -> None:
    """A ConstructorError at the second of two equal keys of `node` (merge keys `<<` aside:
    overriding a merged key is what they are for)."""
    first_line: dict[object, int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node)
        line = key_node.start_mark.line + 1
        if key in first_line:
            raise yaml.constructor.ConstructorError(
                None, None, f"the key {key!r} appears twice in one mapping (lines "
                f"{first_line[key]} and {line}); keep one", key_node.start_mark)
        first_line.setdefault(key, line)


YamlLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}
YamlLoader.add_implicit_resolver("tag:yaml.org,2002:bool",
                                 re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                 list("tTfF"))


def parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=YamlLoader)  # noqa: S506 - a SafeLoader subclass


def read_yaml(path: Path) -> Any:
    """The parsed file; ConfigError naming the line and column of a syntax error."""
    try:
        return parse_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", exc)
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {getattr(exc, 'strerror', None) or exc}") \
            from None


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    data = read_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, "
                          f"got {type(data).__name__}")
    return data


def split_section(spec: str | Path) -> tuple[Path, str | None]:
    """`FILE:KEY[.KEY]` -> (FILE, "KEY.KEY"); a plain path (or one that exists as it is,
    colon included) -> (path, None)."""
    text = str(spec)
    path = Path(text)
    if path.exists() or ":" not in text:
        return path, None
    file, _, key = text.rpartition(":")
    if not file or not key or "/" in key:
        return path, None
    return Path(file), key


def section_of(data: Any, key: str, file: Path) -> Any:
    """The value at dotted `key` of the parsed `file` (lists of named entries by name)."""
    node = data
    for depth, part in enumerate(key.split(".")):
        child = lookup(node, part)
        if child is _MISSING:
            where = ".".join(key.split(".")[:depth]) or "the top level"
            shown = ", ".join(map(str, keys_of(node))) or "nothing"
            raise ConfigError(f"{file}:{key}: {where} has no key {part!r}; it has: {shown}")
        node = child
    return node


def read_section(spec: str | Path) -> tuple[Any, Path]:
    """(the YAML value `FILE:KEY` names, or the whole FILE, and FILE)."""
    path, key = split_section(spec)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder, not a YAML file")
    if not path.is_file():
        raise ConfigError(f"file not found: {path}")
    data = read_yaml(path)
    return (data if key is None else section_of(data, key, path)), path


_MISSING = object()


def lookup(node: Any, part: str) -> Any:
    """node[part]: a mapping's key, or in a list the entry named `part` (or at index part)."""
    if isinstance(node, dict):
        return node.get(part, _MISSING)
    if isinstance(node, list):
        for item in node:
            if isinstance(item, dict) and item.get("name") == part:
                return item
        if part.isdigit() and int(part) < len(node):
            return node[int(part)]
    return _MISSING


def keys_of(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return list(node)
    if isinstance(node, list):
        return [item.get("name", i) if isinstance(item, dict) else i
                for i, item in enumerate(node)]
    return []


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one `a.b.c=value` override; the value is parsed as YAML (`1e-4`, `[1,2]`, `true`)."""
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. training.epochs=1")
    try:
        parsed = parse_yaml(value) if value.strip() else None
    except yaml.constructor.ConstructorError as exc:  # a key twice: {r: 1, r: 2}
        raise ConfigError(f"--set {item!r}: {exc.problem}") from None
    except yaml.YAMLError:
        parsed = value
    set_dotted(raw, key, parsed, source="--set ")


def set_dotted(raw: dict[str, Any], key: str, value: Any, *, source: str = "") -> None:
    """raw["a"]["b"]["c"] = value for key "a.b.c", creating sections on the way. In a list of
    named entries (`adapters:`), a part names an entry (`adapters.code.lora.r`) or its index."""
    node: Any = raw
    parts = key.split(".")
    for depth, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            child = lookup(node, part)
            if child is _MISSING:
                shown = ", ".join(map(str, keys_of(node))) or "none"
                raise ConfigError(f"{source}{key}: {'.'.join(parts[:depth])} has no entry "
                                  f"named {part!r}; its entries: {shown}")
        else:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
        if not isinstance(child, (dict, list)):
            raise ConfigError(f"{source}{key}: {'.'.join(parts[:depth + 1])} is a value, "
                              "not a section")
        node = child
    if isinstance(node, list):
        raise ConfigError(f"{source}{key}: {'.'.join(parts[:-1])} is a list of entries; "
                          f"name one, e.g. {'.'.join(parts[:-1])}.<name>.{parts[-1]}")
    node[parts[-1]] = value


def flatten(raw: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"lora": {"r": 8}} -> {"lora.r": 8}; lists and scalars are leaves."""
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def overrides_from(spec: str) -> list[tuple[str, Any]]:
    """The (dotted key, value) pairs of a mapping in a YAML file (`--set-from FILE:KEY`):
    `{training.epochs: 1, adapters.code.lora: {r: 4}}` -> training.epochs=1,
    adapters.code.lora.r=4. An empty mapping (or null) changes nothing."""
    value, path = read_section(spec)
    if value is None:
        return []
    if not isinstance(value, dict):
        raise ConfigError(f"--set-from {spec}: expected a mapping of KEY: VALUE overrides, "
                          f"got a {type(value).__name__}")
    return [(str(k), v) for k, v in flatten(value).items()]
