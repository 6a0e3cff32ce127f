"""Chat tokenizers and templates built in the tests (no hub): a byte-level BPE trained on a few
sentences, with ChatML or Llama-3-style special tokens, and three templates written here."""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

CORPUS = [
    "What is 6 times 7? The answer is 42. Are you sure? Yes.",
    'I will call a tool. <tool_call>{"name": "multiply", "arguments": {"a": 6, "b": 7}}</tool_call>',
    "Guess the number. Higher. Lower. You got it. The secret number is between 1 and 20.",
    "system user assistant tool ipython tools tool_response error unknown raised check guess",
    "Multiply two integers. Args: a: the first factor. b: the second factor. Returns the product.",
]

CHATML_TEMPLATE = (
    "{%- if tools or messages[0]['role'] == 'system' -%}{{- '<|im_start|>system\\n' -}}"
    "{%- if messages[0]['role'] == 'system' -%}{{- messages[0]['content'] -}}{%- endif -%}"
    "{%- if tools -%}{{- '\\n# Tools\\n<tools>' -}}{%- for tool in tools -%}{{- '\\n' + (tool | tojson) -}}"
    "{%- endfor -%}{{- '\\n</tools>' -}}{%- endif -%}{{- '<|im_end|>\\n' -}}{%- endif -%}"
    "{%- for message in messages -%}{%- if message['role'] == 'system' -%}"
    "{%- elif message['role'] == 'tool' -%}"
    "{{- '<|im_start|>user\\n<tool_response>\\n' + message['content'] + '\\n</tool_response><|im_end|>\\n' -}}"
    "{%- else -%}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)
"""ChatML with tools in the system message and tool results as user turns (the Qwen2.5 layout)."""

THINK_STRIPPING_TEMPLATE = CHATML_TEMPLATE.replace(
    "{%- else -%}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}",
    "{%- elif message['role'] == 'assistant' and not loop.last -%}"
    "{{- '<|im_start|>assistant\\n' + message['content'].split('</think>')[-1].lstrip('\\n') + '<|im_end|>\\n' -}}"
    "{%- else -%}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}",
)
"""ChatML that drops the <think> block of every assistant turn but the last (as Qwen3's does)."""

LLAMA3_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- if tools -%}{{- '<|start_header_id|>system<|end_header_id|>\\n\\nYou may call these functions: '"
    " + (tools | tojson) + '<|eot_id|>' -}}{%- endif -%}"
    "{%- for message in messages -%}"
    "{%- set role = 'ipython' if message['role'] == 'tool' else message['role'] -%}"
    "{{- '<|start_header_id|>' + role + '<|end_header_id|>\\n\\n' + (message['content'] | trim) + '<|eot_id|>' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}{%- endif -%}"
)
"""Llama-3-style headers, <|eot_id|> ends every turn, tool results in the ipython role."""


def build_bpe_tokenizer(
    specials: list[str], template: str | None, **special_tokens: str
) -> PreTrainedTokenizerFast:
    """A byte-level BPE (newlines and digits split one by one, so that text tokenizes the same alone or
    inside a longer rendering) trained on :data:`CORPUS`, with ``specials`` added as special tokens."""
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split("\n", behavior="isolated"),
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    core.train_from_iterator(CORPUS, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=core, **special_tokens)
    tok.chat_template = template
    return tok


def chatml_tokenizer(template: str | None = CHATML_TEMPLATE) -> PreTrainedTokenizerFast:
    return build_bpe_tokenizer(
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        template,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )


def llama3_tokenizer() -> PreTrainedTokenizerFast:
    return build_bpe_tokenizer(
        [
            "<|begin_of_text|>",
            "<|end_of_text|>",
            "<|start_header_id|>",
            "<|end_header_id|>",
            "<|eot_id|>",
            "<|finetune_right_pad_id|>",
        ],
        LLAMA3_TEMPLATE,
        bos_token="<|begin_of_text|>",
        eos_token="<|end_of_text|>",
        pad_token="<|finetune_right_pad_id|>",
    )


def multiply(a: int, b: int) -> int:
    """Multiply two integers.

    Args:
        a: the first factor
        b: the second factor
    """
    return a * b
