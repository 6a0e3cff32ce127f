"""Our reward models inside TRL's GRPOTrainer, TRL-style reward functions inside our envs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import reward_models
from reward_models import RewardModelError
from reward_models.trl_interop import as_trl_reward, none_as


def test_builtins_and_combinators_carry_the_name_trl_logs():
    vader = reward_models.make("vader")
    assert vader.__name__ == "vader"
    assert type(vader).__name__ == "VaderSentiment"  # the class keeps its own name
    assert reward_models.WeightedSum({"v": (vader, 1.0)}, name="mix").__name__ == "mix"
    assert reward_models.Clip(vader, 0.0, 1.0).__name__ == "clip(vader)"


def test_builtins_called_the_way_trl_calls_them_still_reject_wrong_input():
    trl_kwargs = dict(completion_ids=[[1], [2]], trainer_state=object(), log_extra=print, log_metric=print)
    assert reward_models.make("numeric")(["2+2=", "1+1="], ["4", "3"], answer=["4", "2"], **trl_kwargs) == [1.0, 0.0]
    with pytest.raises(RewardModelError, match="'answer' has 1 entries for 2"):
        reward_models.make("numeric")(["2+2=", "1+1="], ["4", "3"], answer=["4"], **trl_kwargs)
    with pytest.raises(RewardModelError, match="needs the per-example column 'answer'"):
        reward_models.make("numeric")(["2+2=", "1+1="], ["4", "3"], **trl_kwargs)
    with pytest.raises(RewardModelError, match=r"completions\[1\] is list"):
        reward_models.make("vader")(["a", "b"], ["good", [3, 4]], **trl_kwargs)


def test_builtin_given_chat_messages_names_the_wrapper_that_reads_them():
    vader = reward_models.make("vader")
    completions = [[{"role": "assistant", "content": "great"}]]
    with pytest.raises(RewardModelError, match=r"'vader': completions\[0\] is a list of chat messages.*as_trl_reward"):
        vader(["hi"], completions)
    assert as_trl_reward(vader)(["hi"], completions)[0] > 0


def test_as_trl_reward_drops_trl_bookkeeping_and_keeps_dataset_columns():
    reward = as_trl_reward("numeric")
    assert reward.__name__ == "numeric"
    got = reward(["2+2=", "1+1="], ["4", "3"], answer=["4", "2"], completion_ids=[[1], [2]], trainer_state=object(),
                 log_extra=print, log_metric=print)
    assert got == [1.0, 0.0]


def test_as_trl_reward_reads_conversational_messages():
    reward = as_trl_reward(reward_models.make("keyword", keywords=["garden"]))
    prompts = [[{"role": "system", "content": "be brief"}, {"role": "user", "content": "a word"}]] * 2
    completions = [[{"role": "assistant", "content": "my garden"}], [{"role": "assistant", "content": "no"}]]
    assert reward(prompts, completions) == [1.0, 0.0]


def test_as_trl_reward_validates_outputs_and_names_the_model():
    def broken(prompts, completions, **kwargs):
        return [float("nan")] * len(completions)

    with pytest.raises(RewardModelError, match="broken"):
        as_trl_reward(broken)(["p"], ["c"])
    with pytest.raises(TypeError, match="registry name"):
        as_trl_reward(reward_models.make("vader"), threshold=1)


def test_learned_reward_model_is_wrapped_as_a_text_function(word_tokenizer):
    """TRL would call an nn.Module with token tensors; the wrapper makes it score text."""
    from tests.reward_models.test_learned import tiny

    rm = tiny(word_tokenizer)
    reward = as_trl_reward(rm)
    assert not isinstance(reward, torch.nn.Module) and reward.__name__ == "learned"
    assert reward(["the movie", "the film"], ["good", "bad"]) == pytest.approx(rm(["the movie", "the film"],
                                                                                 ["good", "bad"]))


def test_trl_style_function_is_an_env_reward():
    import rlenv  # noqa: F401 - registers the ids

    calls = []

    def shout(prompts, completions, **kwargs):  # a TRL reward function, unchanged
        calls.append(kwargs)
        return [float(c.count("!")) for c in completions]

    env = gym.make("rlenv/TextGen-v0", prompts=["Say it:"], reward_model=shout, max_new_tokens=3)
    env.reset(seed=0)
    bang = env.unwrapped.tokenizer.convert_tokens_to_ids("!")
    *_, info = env.step(bang)
    _, reward, terminated, truncated, info = env.step(bang)
    _, reward, terminated, truncated, info = env.step(bang)
    assert truncated and reward == 3.0 and info["completion"] == "!!!"
    assert len(calls) == 1


def test_none_from_a_trl_function_is_refused_by_the_env_with_the_fix():
    """TRL reads None as "this function does not apply here" and skips it; an episode's terminal
    reward has nothing to fall back on, so the env refuses it, and none_as maps it explicitly."""
    import rlenv  # noqa: F401 - registers the ids

    def math_only(prompts, completions, answer=None, **kwargs):  # multi-task style: None off its task
        return [None if a is None else float(c.strip() == str(a)) for c, a in zip(completions, answer, strict=True)]

    prompts = [{"prompt": "Say it:", "answer": None}]
    env = gym.make("rlenv/TextGen-v0", prompts=prompts, reward_model=math_only, max_new_tokens=1)
    env.reset(seed=0)
    with pytest.raises(RewardModelError, match=r"'math_only' returned a non-number at index 0: None.*none_as\(rm, 0.0\)"):
        env.step(0)
    env = gym.make("rlenv/TextGen-v0", prompts=prompts, reward_model=none_as(math_only, -1.0), max_new_tokens=1)
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step(0)
    assert (terminated or truncated) and reward == -1.0 and info["prompt"] == "Say it:"
    assert none_as(math_only, 0.0).__name__ == "math_only"


@pytest.mark.slow
def test_grpo_trainer_trains_with_our_reward_models(tmp_path):
    """A real trl.GRPOTrainer run (2 steps, CPU) on the embedded model, rewarded by our registry's
    VADER and the Keyword task's own reward over rlenv.hf_dataset's prompts (whose ``keyword`` column
    TRL passes on); TRL logs both by name and the weights move."""
    from trl import GRPOConfig, GRPOTrainer

    import rlenv
    from rlenv.hf_dataset import prompt_dataset, task_reward

    config = GRPOConfig(
        output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=8, num_generations=4,
        max_completion_length=12, learning_rate=1e-4, use_cpu=True, bf16=False, fp16=False, report_to="none",
        logging_steps=1, save_strategy="no", disable_tqdm=True, seed=0, gradient_checkpointing=False,
    )
    torch.manual_seed(0)
    trainer = GRPOTrainer(model=str(rlenv.DEFAULT_MODEL), args=config,
                          train_dataset=prompt_dataset("rlenv/Keyword-v0", n=32),
                          reward_funcs=[reward_models.make("vader"), task_reward("rlenv/Keyword-v0")])
    before = {k: v.detach().clone() for k, v in trainer.model.named_parameters()}
    trainer.train()
    logged = {k for record in trainer.state.log_history for k in record}
    assert {"rewards/vader/mean", "rewards/keyword/mean"} <= logged, sorted(logged)
    changed = any(not torch.equal(before[k], v) for k, v in trainer.model.named_parameters())
    assert changed, "two GRPO steps left every weight unchanged"


# ---- the three shapes TRL users write, called by keyword as TRL calls them ---------------------------
def reward_full(prompts, completions, **kwargs):
    return [float(len(c) > 0) for c in completions]


def reward_completions_only(completions, **kwargs):  # TRL's idiomatic form: no prompts parameter
    return [float(len(c) > 0) for c in completions]


def reward_with_column(completions, answer, **kwargs):  # a dataset column by name, no default
    return [float(c.strip() == str(a)) for c, a in zip(completions, answer, strict=True)]


@pytest.mark.parametrize("rm", [reward_full, reward_completions_only, reward_with_column])
@pytest.mark.parametrize("vector", [False, True])
def test_trl_reward_function_shapes_work_as_env_rewards(rm, vector):
    import rlenv  # noqa: F401 - registers the ids

    prompts = [{"prompt": "2+2=", "answer": 4}]
    if vector:
        env = gym.make_vec("rlenv/TextGen-v0", num_envs=2, vectorization_mode="vector_entry_point",
                           autoreset_mode="Disabled", prompts=prompts, reward_model=rm, max_new_tokens=2)
    else:
        env = gym.make("rlenv/TextGen-v0", prompts=prompts, reward_model=rm, max_new_tokens=2)
    env.reset(seed=0)
    tokenizer = env.unwrapped.tokenizer
    four, eos = tokenizer.convert_tokens_to_ids("4"), tokenizer.eos_token_id
    env.step(np.full(2, four) if vector else four)
    _, reward, terminated, truncated, info = env.step(np.full(2, eos) if vector else eos)
    assert np.all(terminated) and np.all(np.asarray(reward) == 1.0)


def test_reward_models_are_called_by_keyword():
    seen = {}

    def spy(*args, **kwargs):
        seen.update(args=args, keys=sorted(kwargs))
        return [0.0]

    reward_models.score(spy, ["p"], ["c"], answer=[1])
    assert seen == {"args": (), "keys": ["answer", "completions", "prompts"]}


@pytest.mark.parametrize("rm, problem", [
    (lambda p, c: [0.0] * len(c), "does not accept prompts= or completions="),
    (lambda prompts, completions: [0.0], None),  # accepted: takes both by keyword, no columns needed
    (lambda p, c, **kw: [0.0] * len(c), "required parameters p, c would receive nothing"),
    (eval("lambda prompts, completions, /, **kw: [0.0]"), "positional-only"),
    (lambda completions: [0.0], "does not accept prompts="),
])
def test_a_callable_that_cannot_take_keywords_is_refused_when_the_env_is_built(rm, problem):
    import rlenv  # noqa: F401 - registers the ids

    if problem is None:
        gym.make("rlenv/TextGen-v0", reward_model=rm)
        return
    with pytest.raises(RewardModelError, match=r"cannot be called as rm\(prompts=\[\.\.\.\], completions=.*"
                                                 + problem + r".*def <lambda>\(completions, \*\*kwargs\)"):
        gym.make("rlenv/TextGen-v0", reward_model=rm)
    with pytest.raises(RewardModelError, match=problem):
        reward_models.Clip(rm)
    with pytest.raises(RewardModelError, match=problem):
        as_trl_reward(rm)


def test_a_missing_column_is_named_at_scoring_time():
    import rlenv  # noqa: F401 - registers the ids

    env = gym.make("rlenv/TextGen-v0", prompts=["no answer here"], reward_model=reward_with_column, max_new_tokens=1)
    env.reset(seed=0)
    with pytest.raises(RewardModelError, match="'reward_with_column'.*requires the column.*answer.*columns: none"):
        env.step(0)


def test_an_error_inside_the_reward_function_keeps_its_traceback():
    def buggy(completions, **kwargs):
        return [len(None) for _ in completions]  # a TypeError of the function's own

    with pytest.raises(reward_models.RewardFunctionError, match="'buggy' raised TypeError.*NoneType") as caught:
        reward_models.score(buggy, ["p"], ["c"])
    original = caught.value.__cause__
    assert isinstance(original, TypeError)
    assert original.__traceback__ is not None  # the function's own frame, where len(None) failed
    frames = []
    tb = original.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    assert "<listcomp>" in frames or "buggy" in frames
