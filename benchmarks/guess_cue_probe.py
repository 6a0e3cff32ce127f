"""How often the embedded model starts a digit after each candidate GuessNumber cue: the next token's
probability mass on the digits 1-9, from one forward pass over the prompt and the cue.

    python benchmarks/guess_cue_probe.py            # the figures in rlenv.tasks.multiturn_tasks.guess_number

GuessNumber-v0's cue is the text written after the prompt and after every reply; RL only finds the game
if the untrained model starts a number there often enough.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from rlenv import DEFAULT_MODEL  # noqa: E402
from rlenv.tasks.multiturn_tasks import guess_number_prompts  # noqa: E402

CUES = ["", "Guess: ", "My guess: ", "Number: ", "I guess "]


def main() -> None:
    torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(DEFAULT_MODEL)
    model = AutoModelForCausalLM.from_pretrained(DEFAULT_MODEL).eval()
    digits = [tok.convert_tokens_to_ids(str(d)) for d in range(1, 10)]
    for high in (8, 20):
        for cue in CUES:
            prompt = guess_number_prompts(high, cue)(np.random.default_rng(0))["prompt"]
            ids = tok(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
            with torch.no_grad():
                p = model(ids).logits[0, -1].softmax(-1)
            top = [tok.decode([int(i)]) for i in p.topk(3).indices]
            print(
                f"1..{high:<2} cue {cue!r:<14} P(digit) {p[digits].sum().item():.3f}   top-3 next tokens {top}"
            )


if __name__ == "__main__":
    main()
