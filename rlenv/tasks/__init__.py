"""Named tasks: each binds prompts, a reward model and defaults to the generic env."""

from rlenv.registration import EnvInfo, register_task


def register_all() -> None:
    register_task(
        EnvInfo(
            id="rlenv/TextGen-v0",
            summary="generic token-level generation: any tokenizer, prompts and reward model",
            reward="reward_model= (default: vader, VADER compound of the completion)",
            prompts="prompts= (default: embedded review openings)",
            defaults={"max_prompt_tokens": 32, "max_new_tokens": 32},
        ),
        "rlenv.registration:identity_builder",
    )
