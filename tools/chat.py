"""The embedded model's chat stage: chat tokens, a chat template, and synthetic conversations.

An instruct model is a base model fine-tuned on conversations. The embedded model is made the same
way, in a second stage after ``tools.model``:

1. **Tokenizer.** The base tokenizer gains the special tokens ``<|im_start|>`` / ``<|im_end|>``
   (ChatML turns, ``<|im_end|>`` ends the assistant's turn), the added tokens ``<tool_call>`` /
   ``</tool_call>`` (one token each, as in Qwen2.5's vocabulary) and :data:`CHAT_TEMPLATE`; every
   existing id keeps its meaning.
2. **Conversations**, rendered with that template, mixed into the base corpus: tool calls to
   ``multiply(a, b)`` with their results (ChatCalculator's shape), GuessNumber games as chats, and
   the single-turn tasks' requests as user messages (``chat=True``). Their answers are right only
   part of the time — a call is well-formed about half the time, its final answer does not always
   repeat the tool's result, guesses are often random — so RL has headroom, as with the corpus's
   Arithmetic and Keyword documents. Only train-split prompts appear (the held-out splits of
   :mod:`rlenv.tasks.splits` stay unseen).
3. **Training** continues from the base weights (two embedding rows per new token, initialised to
   the mean embedding) on base documents + conversations.

``python -m tools.chat --base build/default_model/model --model-dir rlenv/assets/default_model``
(after ``tools.corpus``, ``tools.tokenizer``, ``tools.model``) takes about 10 minutes on 2 CPU
threads; it records both stages in ``build_info.json``.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rlenv.tasks.splits import is_heldout_text
from tools.corpus import BUILD_DIR, SEED, CorpusConfig, arithmetic_documents, build_corpus, keyword_documents
from tools.hashing import sha256_file
from tools.model import TrainConfig, train_model, write_build_info
from tools.review_grammar import review_documents
from tools.wordnet import WORDNET_EXTRACT, read_wordnet

IM_START, IM_END = "<|im_start|>", "<|im_end|>"
TOOL_CALL_OPEN, TOOL_CALL_CLOSE = "<tool_call>", "</tool_call>"

CHAT_TEMPLATE = (
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set system = messages[0]['content'] -%}{%- set rest = messages[1:] -%}"
    "{%- else -%}{%- set system = none -%}{%- set rest = messages -%}{%- endif -%}"
    "{%- if tools or system is not none -%}"
    "{{- '<|im_start|>system\\n' -}}"
    "{%- if system is not none -%}{{- system -}}{%- if tools -%}{{- '\\n' -}}{%- endif -%}{%- endif -%}"
    "{%- if tools -%}{{- 'Tools:' -}}"
    "{%- for tool in tools -%}{%- set f = tool['function'] if 'function' in tool else tool -%}"
    "{{- ' ' + f['name'] + '(' + (f['parameters']['properties'] | list | join(', ')) + '): ' + f['description'] -}}"
    "{%- endfor -%}"
    '{{- \'\\nCall one as <tool_call>{"name": ..., "arguments": {...}}</tool_call>\' -}}'
    "{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- for message in rest -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}{%- endif -%}"
    "{%- if message['tool_calls'] is defined and message['tool_calls'] -%}"
    "{%- for call in message['tool_calls'] -%}{%- set fn = call['function'] if 'function' in call else call -%}"
    "{%- set arguments = fn['arguments'] if fn['arguments'] is string else fn['arguments'] | tojson -%}"
    "{{- '<tool_call>{\"name\": \"' + fn['name'] + '\", \"arguments\": ' + arguments + '}</tool_call>' -}}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)
"""ChatML turns (``<|im_start|>role\\n...<|im_end|>\\n``). Tools go into the system message, one
``name(arguments): description`` each, with the Hermes call format; a tool's result is a ``tool``
turn. Assistant messages with ``tool_calls`` (Hugging Face's structured form) render as the
``<tool_call>`` blocks the model writes. Prefix-preserving: every turn renders as it was written."""

CALCULATOR_QUESTIONS = (
    "What is {a} times {b}?",
    "What is {a} times {b}?",
    "Compute {a} * {b}.",
    "How much is {a} times {b}?",
)
CHAT_STAGE = TrainConfig(steps=1200, lr=5e-4, min_lr=5e-5, warmup_steps=50, threads=1)
"""The chat stage continues the base model at half its peak learning rate (the base peaked at 1e-3)."""

GUESS_PROMPT = "I picked a number from 1 to {high}. Guess it: answer with one number."


def multiply_schema() -> dict[str, Any]:
    """The schema ChatCalculator gives the template (its ``multiply`` tool's, as the env derives it)."""
    from transformers.utils import get_json_schema

    from rlenv.tasks.chat_tasks import multiply

    return get_json_schema(multiply)


def _call(name: str, arguments: dict[str, Any]) -> str:
    return f"{TOOL_CALL_OPEN}{json.dumps({'name': name, 'arguments': arguments})}{TOOL_CALL_CLOSE}"


def _near_miss(x: int, rng: random.Random) -> int:
    """A plausible wrong number near ``x``: off by a little, or a digit dropped or doubled."""
    kind = rng.random()
    if kind < 0.6:
        return max(0, x + rng.choice((-10, -3, -2, -1, 1, 2, 3, 10)))
    digits = str(x)
    if kind < 0.8 and len(digits) > 1:
        k = rng.randrange(len(digits))
        return int(digits[:k] + digits[k + 1 :])
    return int(digits + digits[-1])


def calculator_conversation(rng: random.Random, max_operand: int = 99) -> list[dict[str, Any]]:
    """A ``multiply`` tool conversation on a train-split question; the final answer is right about
    40% of the time (a call is well-formed ~55%, the final answer repeats its result ~75%)."""
    while True:
        a, b = rng.randint(2, max_operand), rng.randint(2, max_operand)
        question = rng.choice(CALCULATOR_QUESTIONS).format(a=a, b=b)
        if not is_heldout_text(CALCULATOR_QUESTIONS[0].format(a=a, b=b)):
            break
    messages: list[dict[str, Any]] = [{"role": "user", "content": question}]

    def final(result: int | None) -> None:
        right = result is not None and rng.random() < 0.75
        answer = (
            result
            if right and result is not None
            else _near_miss(result if result is not None else a * b, rng)
        )
        if result is None and rng.random() < 0.1:
            answer = a * b  # an unaided guess that happens to be right
        text = rng.choice(("{a} times {b} is {c}.", "The answer is {c}.", "{c}"))
        messages.append({"role": "assistant", "content": text.format(a=a, b=b, c=answer)})

    kind = rng.random()
    if kind < 0.55:  # a well-formed call
        arguments = {"a": a, "b": b} if rng.random() < 0.8 else {"a": b, "b": a}
        messages.append({"role": "assistant", "content": _call("multiply", arguments)})
        messages.append({"role": "tool", "name": "multiply", "content": json.dumps(a * b)})
        final(a * b)
    elif kind < 0.67:  # a call with a mistyped argument: the tool multiplies what it was given
        wrong = {"a": _near_miss(a, rng), "b": b} if rng.random() < 0.5 else {"a": a, "b": _near_miss(b, rng)}
        messages.append({"role": "assistant", "content": _call("multiply", wrong)})
        result = wrong["a"] * wrong["b"]
        messages.append({"role": "tool", "name": "multiply", "content": json.dumps(result)})
        final(result)
    elif kind < 0.75:  # a call the env cannot run: an error, then a retry or a guess
        if rng.random() < 0.5:
            bad = _call("multiply", {"a": a, "b": b})[: -len(TOOL_CALL_CLOSE) - 1] + TOOL_CALL_CLOSE
            error = "error: malformed tool call, not JSON (Expecting ',' delimiter)"
        else:
            bad = _call("product", {"a": a, "b": b})
            error = "error: unknown tool 'product'; the tools are multiply"
        messages.append({"role": "assistant", "content": bad})
        messages.append({"role": "tool", "name": "multiply", "content": error})
        if rng.random() < 0.5:
            messages.append({"role": "assistant", "content": _call("multiply", {"a": a, "b": b})})
            messages.append({"role": "tool", "name": "multiply", "content": json.dumps(a * b)})
            final(a * b)
        else:
            final(None)
    else:  # no call: an unaided answer
        final(None)
    return messages


def guess_number_conversation(rng: random.Random) -> list[dict[str, Any]]:
    """ChatGuessNumber as the env plays it: ``higher`` / ``lower`` after each wrong guess, at most five
    guesses. The guesser bisects in 40% of games, guesses within the hints in 30%, and ignores them
    in the rest."""
    high = rng.choice((10, 20, 20, 20, 50, 100))
    secret = rng.randint(1, high)
    style = rng.choices(("bisect", "within", "random"), weights=(4, 3, 3))[0]
    lo, hi = 1, high
    messages: list[dict[str, Any]] = [{"role": "user", "content": GUESS_PROMPT.format(high=high)}]
    for _ in range(5):
        if style == "bisect":
            guess = max(lo, min(hi, (lo + hi) // 2 + rng.choice((-1, 0, 0, 0, 1))))
        elif style == "within":
            guess = rng.randint(lo, hi)
        else:
            guess = rng.randint(1, high)
        if rng.random() < 0.03:
            messages.append({"role": "assistant", "content": "I do not know."})
            messages.append({"role": "user", "content": "number?"})
            continue
        content = str(guess) if rng.random() < 0.85 else f"Is it {guess}?"
        messages.append({"role": "assistant", "content": content})
        if guess == secret:
            break
        if guess < secret:
            lo = max(lo, guess + 1)
        else:
            hi = min(hi, guess - 1)
        messages.append({"role": "user", "content": "higher" if guess < secret else "lower"})
    if messages[-1]["role"] == "user":
        messages.pop()  # the fifth wrong guess ends the game; the env sends no last hint
    return messages


def copy_conversation(rng: random.Random) -> list[dict[str, Any]]:
    """``Write x and y.`` answered with the numbers themselves: the copying a tool call needs (question
    to arguments, result to answer), which the base corpus never shows, in its shortest form."""
    x, y = (rng.randint(0, 10 ** rng.randint(1, 4) - 1) for _ in range(2))
    if rng.random() < 0.5:
        return [{"role": "user", "content": f"Write {x}."}, {"role": "assistant", "content": f"{x}"}]
    return [
        {"role": "user", "content": f"Write {x} and {y}."},
        {"role": "assistant", "content": f"{x} and {y}."},
    ]


def single_turn_conversations(n: int, rng: random.Random) -> list[list[dict[str, Any]]]:
    """The single-turn tasks with ``chat=True``: the request is the user's message, the corpus's own
    answer the assistant's (Keyword instructions, ``a+b=`` sums, review openings continued)."""
    synsets = read_wordnet(WORDNET_EXTRACT)
    conversations = []
    for doc in keyword_documents(n // 3, synsets, random.Random(rng.random())):
        request, answer = doc.split(": ", 1)
        conversations.append(
            [{"role": "user", "content": request + ":"}, {"role": "assistant", "content": answer}]
        )
    for doc in arithmetic_documents(n // 3, random.Random(rng.random())):
        request, answer = doc.split("=")
        if not is_heldout_text(request + "="):
            conversations.append(
                [{"role": "user", "content": request + "="}, {"role": "assistant", "content": answer}]
            )
    for doc in review_documents(n - 2 * (n // 3), random.Random(rng.random())):
        words = doc.split(" ")
        k = rng.randint(2, 4)
        conversations.append(
            [
                {"role": "user", "content": " ".join(words[:k])},
                {"role": "assistant", "content": " ".join(words[k:])},
            ]
        )
    return conversations


@dataclass(frozen=True)
class ChatCorpusConfig:
    seed: int = SEED
    n_calculator: int = 10_000
    n_guess_number: int = 4_000
    n_single_turn: int = 6_000
    n_copy: int = 30_000
    p_system_prompt: float = 0.1


def chat_conversations(
    config: ChatCorpusConfig = ChatCorpusConfig(),
) -> list[tuple[list[dict[str, Any]], bool]]:
    """``(messages, with_tools)`` for every conversation, shuffled by a seeded RNG."""
    rng = random.Random(f"{config.seed}-chat")
    out = [(calculator_conversation(rng), True) for _ in range(config.n_calculator)]
    out += [(guess_number_conversation(rng), False) for _ in range(config.n_guess_number)]
    out += [(c, False) for c in single_turn_conversations(config.n_single_turn, rng)]
    out += [(copy_conversation(rng), False) for _ in range(config.n_copy)]
    for messages, _ in out:
        if rng.random() < config.p_system_prompt:
            messages.insert(0, {"role": "system", "content": "You are a helpful assistant."})
    random.Random(f"{config.seed}-chat-shuffle").shuffle(out)
    return out


def chat_tokenizer(base_tokenizer_dir: Path, out: Path) -> Path:
    """The base tokenizer plus the chat tokens and :data:`CHAT_TEMPLATE`, saved into ``out``."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base_tokenizer_dir))
    tokenizer.add_special_tokens({"additional_special_tokens": [IM_START, IM_END]})
    tokenizer.add_tokens([TOOL_CALL_OPEN, TOOL_CALL_CLOSE])
    tokenizer.chat_template = CHAT_TEMPLATE
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(out))
    return out / "tokenizer.json"


def chat_documents(tokenizer_dir: Path, config: ChatCorpusConfig = ChatCorpusConfig()) -> list[str]:
    """Every conversation rendered by the chat tokenizer's template (tools listed where they are used)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    tools = [multiply_schema()]
    return [
        str(tokenizer.apply_chat_template(messages, tools=tools if with_tools else None, tokenize=False))
        for messages, with_tools in chat_conversations(config)
    ]


def write_chat_corpus(documents: Sequence[str], path: Path) -> Path:
    """One JSON string per line (conversations span lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(d) + "\n" for d in documents), encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.chat", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=BUILD_DIR,
        help="build directory: writes chat_tokenizer/, chat_corpus.jsonl",
    )
    parser.add_argument(
        "--base", type=Path, default=BUILD_DIR / "model", help="the base model (tools.model's output)"
    )
    parser.add_argument(
        "--model-dir", type=Path, default=None, help="where the chat model goes (default: OUT/chat_model)"
    )
    parser.add_argument("--steps", type=int, default=CHAT_STAGE.steps)
    args = parser.parse_args(argv)
    tokenizer_path = chat_tokenizer(args.base, args.out / "chat_tokenizer")
    print(f"chat tokenizer.json sha256 {sha256_file(tokenizer_path)}", flush=True)
    chat_docs = chat_documents(args.out / "chat_tokenizer")
    chat_sha256 = sha256_file(write_chat_corpus(chat_docs, args.out / "chat_corpus.jsonl"))
    print(f"chat_corpus.jsonl: {len(chat_docs)} conversations, sha256 {chat_sha256}", flush=True)
    base_docs = build_corpus(CorpusConfig()).documents
    base_info = json.loads((args.base / "build_info.json").read_text(encoding="utf-8"))
    config = TrainConfig(**{**asdict(CHAT_STAGE), "steps": args.steps})
    model_dir = args.model_dir or args.out / "chat_model"
    info = train_model(
        base_docs + chat_docs,
        args.out / "chat_tokenizer",
        model_dir,
        config,
        on_log=lambda line: print(line, flush=True),
        init_from=args.base,
    )
    info = {
        "base": base_info,
        "chat_stage": {
            **info,
            "chat_corpus_sha256": chat_sha256,
            "chat_corpus_config": asdict(ChatCorpusConfig()),
            "chat_documents": len(chat_docs),
        },
    }
    write_build_info(model_dir, info)
    print(json.dumps(info["chat_stage"], indent=2))


if __name__ == "__main__":
    main()
