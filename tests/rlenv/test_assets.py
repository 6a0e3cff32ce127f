"""The embedded default model: it loads offline with plain transformers calls, and the build tooling
(``tools/``) reproduces its corpus, base and chat tokenizers, chat conversations and task prompt
files byte for byte (the LM's two training stages are too long for CI; their configs are checked
against ``tools.model.TrainConfig`` and ``tools.chat.CHAT_STAGE`` instead)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import rlenv
from rlenv.assets import DATA_DIR, DEFAULT_MODEL_DIR
from tools import corpus as corpus_build
from tools.chat import (
    CHAT_STAGE,
    CHAT_TEMPLATE,
    ChatCorpusConfig,
    chat_documents,
    chat_tokenizer,
    write_chat_corpus,
)
from tools.hashing import sha256_file
from tools.model import TrainConfig
from tools.tokenizer import EOS, PAD, VOCAB_SIZE, train_tokenizer
from tools.wordnet import Synset, read_wordnet, read_wordnet_data_files, write_wordnet_extract

MODEL_DIR = DEFAULT_MODEL_DIR


@pytest.fixture(scope="module")
def build_info() -> dict:
    return json.loads((MODEL_DIR / "build_info.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def corpus(build_info) -> corpus_build.Corpus:
    return corpus_build.build_corpus(corpus_build.CorpusConfig(**build_info["base"]["corpus_config"]))


def test_default_model_is_the_shipped_directory():
    assert Path(rlenv.DEFAULT_MODEL).resolve() == MODEL_DIR.resolve()
    names = {p.name for p in MODEL_DIR.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "build_info.json"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names), "weights ship as safetensors only"


def test_loads_offline_with_plain_transformers_and_matches_its_tokenizer(build_info):
    tokenizer = AutoTokenizer.from_pretrained(str(rlenv.DEFAULT_MODEL))
    model = AutoModelForCausalLM.from_pretrained(str(rlenv.DEFAULT_MODEL))
    assert model.config.vocab_size == len(tokenizer) == VOCAB_SIZE + 4  # + the chat stage's four tokens
    assert tokenizer.eos_token == EOS and tokenizer.pad_token == PAD
    assert tokenizer.chat_template == CHAT_TEMPLATE
    assert model.config.eos_token_id == tokenizer.eos_token_id
    assert sum(p.numel() for p in model.parameters()) == build_info["chat_stage"]["parameters"]
    assert TrainConfig(**build_info["chat_stage"]["train_config"]) == CHAT_STAGE
    train = TrainConfig(**build_info["base"]["train_config"])
    assert (model.config.n_layer, model.config.n_embd, model.config.n_head) == (
        train.n_layer,
        train.n_embd,
        train.n_head,
    )
    assert [tokenizer.decode([i]) for i in tokenizer("12+345=")["input_ids"]] == list("12+345=")


def test_model_continues_review_and_arithmetic_text_sensibly():
    """Not a quality gate, a sanity one: the model ends documents with EOS and writes digits after '='."""
    tokenizer = AutoTokenizer.from_pretrained(str(rlenv.DEFAULT_MODEL))
    model = AutoModelForCausalLM.from_pretrained(str(rlenv.DEFAULT_MODEL)).eval()
    torch.manual_seed(0)
    batch = tokenizer(["12+7=", "I think the phone"], return_tensors="pt", padding=True, padding_side="left")
    out = model.generate(**batch, do_sample=False, max_new_tokens=24, pad_token_id=tokenizer.pad_token_id)
    arithmetic, review = tokenizer.batch_decode(
        out[:, batch["input_ids"].shape[1] :], skip_special_tokens=False
    )
    assert arithmetic[:1].isdigit(), arithmetic
    assert EOS in arithmetic and EOS in review, (arithmetic, review)
    assert len(review.split(EOS)[0].split()) >= 2, review


def test_corpus_build_reproduces_the_shipped_hash_and_prompt_files(corpus, build_info):
    text = corpus_build.corpus_text(corpus.documents)
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == build_info["base"]["corpus_sha256"]
    shipped_reviews = (DATA_DIR / "review_prompts.txt").read_text(encoding="utf-8").splitlines()
    assert shipped_reviews == corpus.review_prompts
    shipped_keywords = [
        json.loads(line)
        for line in (DATA_DIR / "keyword_prompts.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert shipped_keywords == corpus.keyword_prompts
    assert not set(corpus.review_prompts) & set(corpus.documents), (
        "task prompts must not be training documents"
    )


def test_tokenizer_build_reproduces_the_shipped_tokenizer(corpus, build_info, tmp_path):
    base = train_tokenizer(corpus.documents, tmp_path / "tokenizer")
    assert sha256_file(base) == build_info["base"]["tokenizer_json_sha256"]
    chat = chat_tokenizer(tmp_path / "tokenizer", tmp_path / "chat_tokenizer")
    assert sha256_file(chat) == build_info["chat_stage"]["tokenizer_json_sha256"]
    assert sha256_file(chat) == sha256_file(MODEL_DIR / "tokenizer.json")


def test_chat_conversations_reproduce_the_shipped_hash(build_info, tmp_path):
    stage = build_info["chat_stage"]
    assert ChatCorpusConfig(**stage["chat_corpus_config"]) == ChatCorpusConfig()
    documents = chat_documents(MODEL_DIR)
    assert len(documents) == stage["chat_documents"]
    assert sha256_file(write_chat_corpus(documents, tmp_path / "chat.jsonl")) == stage["chat_corpus_sha256"]


def test_corpus_mixes_the_four_document_kinds(corpus):
    docs = corpus.documents
    arithmetic = [d for d in docs if re.fullmatch(r"\d+[-+*]\d+=-?\d+", d)]
    keyword = [d for d in docs if d.startswith("Write a sentence with the word ")]
    assert len(arithmetic) == corpus_build.CorpusConfig().n_arithmetic
    assert len(keyword) == corpus_build.CorpusConfig().n_keyword
    wrong = sum(eval(d.split("=")[0]) != int(d.split("=")[1]) for d in arithmetic)  # noqa: S307 - digits only
    assert 0.05 < wrong / len(arithmetic) < 0.6, "arithmetic must be mostly but not always right"
    assert len(docs) - len(arithmetic) - len(keyword) > 50_000  # WordNet examples + reviews


def test_wordnet_extract_round_trips_what_the_data_files_hold(tmp_path):
    """The extract keeps each synset's lexicographer file, lemmas and cleaned examples; the corpus
    build reads only it, so no system package is needed."""
    (tmp_path / "wn").mkdir()
    header = "  1 This software and database is being provided to you, the LICENSEE, by Princeton\n"
    rows = {
        "adj": "00001740 00 a 01 able 0 005 | (usually followed by `to') having the necessary means; \"able to "
        'swim";  "she was able to program her computer"\n',
        "adv": '00001740 02 r 02 a_priori 0 priori 0 000 | "we know a priori"; "x"\n',  # "x": one word, dropped
        "noun": "00001930 03 n 01 entity 0 003 | that which exists (no example)\n",
        "verb": '00001740 29 v 04 breathe 0 take_a_breath 0 respire 0 suspire 3 021 | draw air; "Clinton '
        'breathed   a sigh"\n',
    }
    for part, row in rows.items():
        (tmp_path / "wn" / f"data.{part}").write_text(header + row, encoding="utf-8")
    synsets = read_wordnet_data_files(tmp_path / "wn")
    assert synsets == [
        Synset(0, ("able",), ("able to swim", "she was able to program her computer")),
        Synset(2, ("a_priori", "priori"), ("we know a priori",)),
        Synset(29, ("breathe", "take_a_breath", "respire", "suspire"), ("Clinton breathed a sigh",)),
    ]
    path = write_wordnet_extract(synsets, tmp_path / "extract.tsv.gz")
    assert read_wordnet(path) == synsets
    first = path.read_bytes()
    assert (
        write_wordnet_extract(synsets, tmp_path / "extract.tsv.gz").read_bytes() == first
    )  # fixed gzip header


def test_shipped_wordnet_extract_loads():
    synsets = read_wordnet()
    assert len(synsets) > 30_000
    assert all(s.examples and all("\t" not in e for e in s.examples) for s in synsets)


def test_build_refuses_an_autocast_it_would_silently_ignore():
    assert TrainConfig().autocast == "bf16" and TrainConfig(autocast=None).autocast is None
    with pytest.raises(ValueError, match="'bf16' or None"):
        TrainConfig(autocast="fp16")
