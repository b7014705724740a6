"""Shared fixtures: tiny randomly initialised encoders built from a config, small datasets,
and the location of ../shared/data for the integration tests."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WORDS = ("the movie film story plot actor was is very quite really good great excellent "
         "wonderful bad awful terrible boring a an and but it this that i we loved hated "
         "john smith paris london alice bob lives in works at acme corp on monday").split()
POSITIVE = ("good", "great", "excellent", "wonderful", "loved")
NEGATIVE = ("bad", "awful", "terrible", "boring", "hated")


def shared_data_dir() -> Path | None:
    env = os.environ.get("LORALAB_SHARED_DATA")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    return path if path.is_dir() else None


def write_tokenizer(folder: Path) -> None:
    from transformers import BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, ".", ","]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(str(folder / "vocab.txt"), do_lower_case=True).save_pretrained(folder)


def tiny_config(arch: str):
    import transformers

    # a larger init than BERT's 0.02 keeps the tiny random model's features distinguishable
    common = {"vocab_size": len(WORDS) + 7, "pad_token_id": 0, "initializer_range": 0.3}
    no_dropout = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    if arch == "bert":
        return transformers.BertConfig(hidden_size=32, num_hidden_layers=2,
                                       num_attention_heads=2, intermediate_size=64,
                                       max_position_embeddings=128, **no_dropout, **common)
    if arch == "roberta":
        return transformers.RobertaConfig(hidden_size=32, num_hidden_layers=2,
                                          num_attention_heads=2, intermediate_size=64,
                                          max_position_embeddings=130, bos_token_id=2,
                                          eos_token_id=3, **no_dropout, **common)
    if arch == "distilbert":
        return transformers.DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                                             max_position_embeddings=128, dropout=0.0,
                                             attention_dropout=0.0, **common)
    if arch == "modernbert":
        return transformers.ModernBertConfig(hidden_size=32, num_hidden_layers=2,
                                             num_attention_heads=2, intermediate_size=64,
                                             max_position_embeddings=128, bos_token_id=2,
                                             eos_token_id=3, cls_token_id=2, sep_token_id=3,
                                             global_attn_every_n_layers=1,
                                             **common)
    raise ValueError(arch)


def build_tiny_encoder(folder: Path, arch: str = "bert", seed: int = 0) -> Path:
    import torch
    import transformers

    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    transformers.AutoModel.from_config(tiny_config(arch)).save_pretrained(folder)
    write_tokenizer(folder)
    return folder


@pytest.fixture(scope="session")
def shared() -> Path:
    """../shared/data, or a skip with the reason where it is absent."""
    folder = shared_data_dir()
    if folder is None:
        pytest.skip("shared data folder ../shared/data not found; set LORALAB_SHARED_DATA to it")
    return folder


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return build_tiny_encoder(tmp_path_factory.mktemp("tiny-bert"), "bert")


def sentiment_rows(n: int, seed: int) -> list[dict]:
    """Texts whose label is decided by one sentiment word: learnable by a tiny model."""
    rng = random.Random(seed)
    fillers = [w for w in WORDS if w not in POSITIVE + NEGATIVE]
    rows = []
    for _ in range(n):
        label = rng.random() < 0.5
        words = rng.sample(fillers, 4) + [rng.choice(POSITIVE if label else NEGATIVE)]
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "label": "pos" if label else "neg",
                     "score": 4.0 + rng.random() if label else rng.random()})
    return rows


def ner_rows(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        person, city = rng.choice([["john", "smith"], ["alice"], ["bob"]]), rng.choice(
            ["paris", "london"])
        tokens = [*person, "lives", "in", city, "and", "works", "at", "acme", "corp"]
        tags = ["B-PER"] + ["I-PER"] * (len(person) - 1) + ["O", "O", "B-LOC", "O", "O", "O",
                                                             "B-ORG", "I-ORG"]
        rows.append({"tokens": tokens, "tags": tags})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def sentiment_files(tmp_path) -> tuple[Path, Path]:
    return (write_jsonl(tmp_path / "train.jsonl", sentiment_rows(400, 0)),
            write_jsonl(tmp_path / "dev.jsonl", sentiment_rows(100, 1)))


@pytest.fixture
def ner_files(tmp_path) -> tuple[Path, Path]:
    return (write_jsonl(tmp_path / "ner_train.jsonl", ner_rows(80, 0)),
            write_jsonl(tmp_path / "ner_dev.jsonl", ner_rows(30, 1)))


CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>"
                 "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}")


def write_lm_tokenizer(folder: Path):
    """A character-level tokenizer (any printable ASCII text round-trips), with BOS/EOS/PAD
    and a chat template: small enough for a tiny random LM, exact enough for JSON."""
    import string

    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|system|>",
                "<|end|>"]
    chars = list(dict.fromkeys(string.printable))
    vocab = {tok: i for i, tok in enumerate(specials + chars)}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>",
                                        pad_token="<pad>", unk_token="<unk>",
                                        additional_special_tokens=specials[4:])
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)
    return tokenizer


def build_tiny_llama(folder: Path, seed: int = 0, tie_word_embeddings: bool = False) -> Path:
    import torch
    import transformers

    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = write_lm_tokenizer(folder)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=tie_word_embeddings,
        initializer_range=0.5)  # a frozen random head needs room to make peaked logits
    transformers.LlamaForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def intent_rows(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    kinds = [("book a flight to {x}", "book_flight", "city", ["paris", "london", "berlin"]),
             ("order {x}", "order_food", "food", ["pizza", "sushi"]),
             ("set reminder at {x}", "set_reminder", "time", ["noon"])]
    rows = []
    for _ in range(n):
        text, intent, key, values = rng.choice(kinds)
        value = rng.choice(values)
        rows.append({"message": text.format(x=value),
                     "output": {"intent": intent, "entities": {key: value}}})
    return rows


@pytest.fixture
def intent_lm_files(tmp_path) -> tuple[Path, Path]:
    return (write_jsonl(tmp_path / "lm_train.jsonl", intent_rows(120, 0)),
            write_jsonl(tmp_path / "lm_dev.jsonl", intent_rows(24, 1)))
