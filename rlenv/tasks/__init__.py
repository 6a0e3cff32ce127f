"""Named tasks: each binds prompts, a reward model and defaults to the generic env."""

from rlenv.registration import EnvInfo, register_task

_TASKS = [
    (EnvInfo("rlenv/TextGen-v0",
             "generic token-level generation: any tokenizer, prompts and reward model",
             "reward_model= (default 'vader': VADER compound of the completion, in [-1, 1]); reward_model_args= its options",
             "prompts= (default: embedded review openings)",
             {"max_prompt_tokens": 32, "max_new_tokens": 32}),
     "rlenv.registration:identity_builder"),
    (EnvInfo("rlenv/PositiveReview-v0",
             "continue a review opening; rewarded for positive sentiment (RLHF sentiment task in miniature)",
             "vader: VADER compound of the completion, in [-1, 1]",
             "embedded review openings (assets/data/review_prompts.txt)",
             {"max_prompt_tokens": 16, "max_new_tokens": 24}),
     "rlenv.tasks.builtin:positive_review"),
    (EnvInfo("rlenv/Arithmetic-v0",
             "answer 'a+b=' correctly (difficulty= easy | medium | hard)",
             "numeric: 1 if the completion's first number is the answer, else 0 (the seeds' indicator)",
             "generated 'a+b=' / 'a-b=' / 'a*b=' prompts",
             {"difficulty": "easy", "max_prompt_tokens": 12, "max_new_tokens": 8}),
     "rlenv.tasks.builtin:arithmetic"),
    (EnvInfo("rlenv/Keyword-v0",
             "write a short text that uses the requested word",
             "keyword: 1 if the word occurs, minus 0.02 per word beyond 20",
             "embedded instructions (assets/data/keyword_prompts.jsonl)",
             {"max_words": 20, "max_prompt_tokens": 16, "max_new_tokens": 24}),
     "rlenv.tasks.builtin:keyword"),
    (EnvInfo("rlenv/ReasoningGym-v0",
             "any reasoning-gym task (task=, config=), questions seeded from reset(seed)",
             "reasoning_gym: the task's own score_answer, usually in [0, 1]",
             "reasoning_gym.create_dataset(task, seed=<from the env RNG>, **config)",
             {"task": "basic_arithmetic", "max_prompt_tokens": 192, "max_new_tokens": 32}),
     "rlenv.tasks.builtin:reasoning_gym_task"),
    (EnvInfo("rlenv/TokenReverse-v0",
             "toy: emit the prompt's symbols reversed, then EOS (tiny vocabulary, no LM needed; SB3-ready)",
             "fraction of positions right (+ eos_bonus for an exact-length answer)",
             "random 3-symbol strings over 'abcd' (length=, num_symbols=)",
             {"length": 3, "num_symbols": 4, "max_new_tokens": 4}, for_lm=False),
     "rlenv.tasks.token_reverse:token_reverse"),
]


def register_all() -> None:
    for info, builder in _TASKS:
        register_task(info, builder)
