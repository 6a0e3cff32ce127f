"""Dev tooling that rebuilds rlenv's shipped assets from nothing but local files (not installed with
the package: run it from a checkout).

One module per concern, each deterministic under a fixed seed and each its own command::

    python -m tools.corpus                  # build/default_model/corpus.txt + rlenv/assets/data's prompt files
    python -m tools.tokenizer               # byte-level BPE trained on corpus.txt -> build/default_model/tokenizer
    python -m tools.model                   # the GPT-2-style base LM -> build/default_model/model (about 34 minutes on 2 CPU threads)
    python -m tools.chat --model-dir rlenv/assets/default_model    # chat tokens, template, conversations; the chat stage
    python -m tools.reward_model            # rlenv/assets/review_rm, the LearnedReview task's scorer (seconds)
    python -m tools.extracts references     # rlenv/assets/data/review_references.jsonl (ContinueReview)
    python -m tools.extracts wordnet        # rlenv/assets/data/wordnet_examples.tsv.gz from /usr/share/wordnet

Layers, each importing only those before it: ``hashing``; ``wordnet`` (the extract's reader and
writer) and ``review_grammar`` (the synthetic reviews); ``corpus``; ``tokenizer``; ``model``; ``chat``;
``reward_model`` and ``extracts``. The runtime side (``rlenv.assets``) knows only where the built
files are; nothing in ``rlenv``, ``agents`` or ``reward_models`` imports ``tools``.
"""
