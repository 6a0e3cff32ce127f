"""Named tasks: each binds prompts, a reward model and defaults to the generic env.

Layer: this package's ``__init__`` is the table of ids, part of registration (it imports
:mod:`rlenv.registration`); its modules (``builtin``, ``multiturn_tasks``, ``chat_tasks`` ...) are the
tasks layer, which builds env keyword arguments and imports nothing above the environments.
"""

import json
from pathlib import Path
from typing import Any

from rlenv.registration import EnvInfo, register_task

UNTRAINED_FILE = Path(__file__).resolve().parent.parent / "assets" / "data" / "untrained_heldout.json"

TASK_CEILINGS: dict[str, float] = {
    "rlenv/PositiveReview-v0": 1.0,
    "rlenv/Brief-v0": 1.0,
    "rlenv/Keyword-v0": 1.0,
    "rlenv/ContinueReview-v0": 1.0,
    "rlenv/LearnedReview-v0": 1.0,
    "rlenv/Arithmetic-v0": 1.0,
    "rlenv/ChatCalculator-v0": 1.0,
}
"""the best score each task's reward allows (the top of a benchmark's normalised scale)"""


def untrained_heldout() -> dict[str, Any]:
    """The embedded model's held-out scores, as stored by ``benchmarks/untrained_heldout.py`` (with the
    command and protocol that produced them); ``{}`` if the file is absent."""
    if not UNTRAINED_FILE.exists():
        return {}
    return json.loads(UNTRAINED_FILE.read_text())


_TASKS = [
    (
        EnvInfo(
            "rlenv/TextGen-v0",
            "generic token-level generation: any tokenizer, prompts and reward model",
            "reward_model= (default 'vader': VADER compound of the completion, in [-1, 1]); reward_model_args= its options",
            "prompts= (default: embedded review openings)",
            {"max_prompt_tokens": 32, "max_new_tokens": 32},
        ),
        "rlenv.registration:identity_builder",
    ),
    (
        EnvInfo(
            "rlenv/PositiveReview-v0",
            "continue a review opening; rewarded for positive sentiment (RLHF sentiment task in miniature)",
            "vader: VADER compound of the completion, in [-1, 1]",
            "embedded review openings (assets/data/review_prompts.txt), split= train (240) | heldout (60)",
            {"split": "train", "max_prompt_tokens": 16, "max_new_tokens": 24},
        ),
        "rlenv.tasks.builtin:positive_review",
    ),
    (
        EnvInfo(
            "rlenv/Brief-v0",
            "continue a review opening in about target_words words, then stop (length control: when to emit EOS)",
            "length: max(0, 1 - |words - target| / target), in [0, 1]",
            "embedded review openings (assets/data/review_prompts.txt), split= train (240) | heldout (60)",
            {"split": "train", "target_words": 4, "max_prompt_tokens": 16, "max_new_tokens": 24},
        ),
        "rlenv.tasks.builtin:brief",
    ),
    (
        EnvInfo(
            "rlenv/ContinueReview-v0",
            "continue a review opening the way the real review goes (reference task)",
            "chrf: sentence chrF (sacrebleu) against the review's real continuation, in [0, 1]",
            "assets/data/review_references.jsonl, split= train (240) | heldout (60)",
            {"split": "train", "max_prompt_tokens": 16, "max_new_tokens": 24},
        ),
        "rlenv.tasks.builtin:continue_review",
    ),
    (
        EnvInfo(
            "rlenv/LearnedReview-v0",
            "continue a review opening; rewarded by a small learned reward model (a proxy for sentiment)",
            "learned: a 0.3 MB encoder regressing VADER scores of the repo's own reviews (assets/review_rm), "
            "about [-1, 1]",
            "embedded review openings (assets/data/review_prompts.txt), split= train (240) | heldout (60)",
            {"split": "train", "rm_path": None, "max_prompt_tokens": 16, "max_new_tokens": 24},
        ),
        "rlenv.tasks.builtin:learned_review",
    ),
    (
        EnvInfo(
            "rlenv/Arithmetic-v0",
            "answer 'a+b=' correctly (difficulty= easy | medium | hard)",
            "numeric: 1 if the completion's first number is the answer, else 0 (the seeds' indicator); "
            "partial_width=W gives a wrong number max(0, 1 - |error| / W)",
            "generated 'a+b=' / 'a-b=' / 'a*b=' prompts, split= train | heldout (27 of the 100 easy sums)",
            {
                "difficulty": "easy",
                "split": "train",
                "partial_width": None,
                "max_prompt_tokens": 12,
                "max_new_tokens": 8,
            },
            # lr: at the default 1e-4 the embedded model memorises the 73 training sums and held-out
            # greedy accuracy falls 64% -> 44%; at 1e-5 GRPO lifts it to 89-92% (README "Benchmarking")
            card={"lr": 1e-5},
        ),
        "rlenv.tasks.builtin:arithmetic",
    ),
    (
        EnvInfo(
            "rlenv/Keyword-v0",
            "write a short text that uses the requested word",
            "keyword (fuzzy): 1 if the word occurs, else the best character similarity of a completion "
            "word to it, minus 0.02 per word beyond 20",
            "embedded instructions (assets/data/keyword_prompts.jsonl), split= train (240) | heldout (60)",
            {"split": "train", "fuzzy": True, "max_words": 20, "max_prompt_tokens": 16, "max_new_tokens": 24},
        ),
        "rlenv.tasks.builtin:keyword",
    ),
    (
        EnvInfo(
            "rlenv/ReasoningGym-v0",
            "any reasoning-gym task (task=, config=), questions seeded from reset(seed)",
            "reasoning_gym: the task's own score_answer, usually in [0, 1]",
            "reasoning_gym.create_dataset(task, seed=<from the env RNG>, **config)",
            {"task": "basic_arithmetic", "max_prompt_tokens": 192, "max_new_tokens": 32},
        ),
        "rlenv.tasks.builtin:reasoning_gym_task",
    ),
    (
        EnvInfo(
            "rlenv/TokenReverse-v0",
            "toy: emit the prompt's symbols reversed, then EOS (tiny vocabulary, no LM needed; SB3-ready)",
            "fraction of positions right (+ eos_bonus for an exact-length answer)",
            "random 3-symbol strings over 'abcd' (length=, num_symbols=)",
            {"length": 3, "num_symbols": 4, "max_new_tokens": 4},
            for_lm=False,
        ),
        "rlenv.tasks.token_reverse:token_reverse",
    ),
    (
        EnvInfo(
            "rlenv/GuessNumber-v0",
            "multi-turn: guess the env's number in one token per turn; the env answers higher/lower "
            "(feedback=False: 'wrong'); lost after max_turns wrong guesses",
            "per turn: +1 for the right guess (ends the episode), -turn_penalty (0.1) for each wrong one; "
            "a game cut short by the budget costs what losing costs",
            "'I picked a number from 1 to {high}...' with a secret answer (high=8, max_turns=3)",
            {
                "high": 8,
                "max_turns": 3,
                "cue": "I guess ",
                "feedback": True,
                "max_turn_tokens": 1,
                "max_prompt_tokens": 32,
                "max_new_tokens": 33,
            },
        ),
        "rlenv.tasks.multiturn_tasks:guess_number",
    ),
    (
        EnvInfo(
            "rlenv/GuessNumberToy-v0",
            "toy multi-turn: guess a symbol in one token per turn; one-token higher/lower replies (SB3-ready, no LM)",
            "per turn: +1 for the right guess, -turn_penalty (0.1) for each wrong one (the 3rd wrong one ends the game)",
            "a secret symbol in 0..num_values-1 (num_values=4, max_turns=3: the game is lost after 3 guesses)",
            {"num_values": 4, "max_turns": 3, "feedback": True, "max_new_tokens": 5},
        ),
        "rlenv.tasks.multiturn_tasks:guess_number_toy",
    ),
    (
        EnvInfo(
            "rlenv/Calculator-v0",
            "multi-turn tool use: a turn 'calc(a*b)' gets the result inserted by the env; any other turn is the answer",
            "terminal: 1 if the final answer's first number is a*b, else 0",
            "'a*b=? calc(x*y) computes.' with operands in [2, 99]",
            {
                "max_operand": 99,
                "feedback": True,
                "max_calls": 3,
                "max_prompt_tokens": 24,
                "max_new_tokens": 40,
            },
        ),
        "rlenv.tasks.multiturn_tasks:calculator",
    ),
    (
        EnvInfo(
            "rlenv/ChatCalculator-v0",
            "chat with a multiply(a, b) tool: the policy may call it (<tool_call> blocks), then answers",
            "numeric: 1 if the last number of the final answer (the first turn without a tool call) is a*b, else 0",
            "'What is a times b?' as a user message, operands in [2, 99], split= train | heldout",
            {
                "split": "train",
                "max_operand": 99,
                "max_tool_calls": 3,
                "max_prompt_tokens": 16,
                "max_new_tokens": 96,
            },
            # the embedded model copies numbers right greedily (0.52) but almost never at temperature 1
            # (0.00); sampled at 0.5 (~0.08) GRPO finds successes to reinforce, and at lr 1e-4 it collapses
            # (greedy 0.52 -> 0.18 in 150 updates) where 1e-5 learns (docs/chat-and-tools.md)
            card={"lr": 1e-5, "temperature": 0.5},
        ),
        "rlenv.tasks.chat_tasks:chat_calculator",
    ),
    (
        EnvInfo(
            "rlenv/ChatGuessNumber-v0",
            "GuessNumber as a chat: one guess per assistant turn; higher/lower come back as user messages",
            "per turn: +1 for the right guess (ends the episode), -turn_penalty (0.1) for each wrong one; "
            "quitting (EOS) costs what losing costs",
            "'I picked a number from 1 to {high}...' as a user message, a secret answer (high=20, max_turns=5)",
            {"high": 20, "max_turns": 5, "feedback": True, "max_prompt_tokens": 24, "max_new_tokens": 96},
        ),
        "rlenv.tasks.chat_tasks:chat_guess_number",
    ),
]


def register_all() -> None:
    for info, builder in _TASKS:
        register_task(info, builder)
