"""Hashed word and character n-grams: the ``hashed-ngrams`` tokenizer's definition.

This module *is* the specification (``docs/recipes.md`` repeats it), so that any
implementation, in any language, gives the same ids for the same recipe and text:

1. If ``lowercase``, the text is lowercased with Python's ``str.lower`` (no Unicode
   normalisation is applied).
2. Words: the maximal runs of Unicode letters and digits (``[^\\W_]+``), and every
   other non-space character on its own (so ``"don't!"`` is ``don``, ``'``, ``t``,
   ``!``).
3. Features, in this order: for each word n-gram order ``n`` in ``word_ngrams``
   (low to high), every run of ``n`` consecutive words, as ``"w" + "\\x1f".join(words)``;
   then, word by word, the character n-grams of ``"<" + word + ">"`` for each
   length ``n`` in ``char_ngrams`` (low to high, left to right, counted in code
   points), as ``"c" + gram``. Character n-grams are taken of letter-and-digit
   words only (not of the one-character punctuation words), and a gram equal to
   the whole ``<word>`` is kept.
4. Each feature's UTF-8 bytes are hashed with BLAKE2b (digest size 8 bytes, no key,
   person ``b"fedseed-ngrams"``); the digest read as a little-endian unsigned
   64-bit integer ``h`` gives id ``1 + h % buckets``. Id 0 is padding.
5. The first ``max_tokens`` ids are kept (so a long text loses its last character
   n-grams first).

Python's ``hash()`` is never used: it is salted per process.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from functools import lru_cache

from fedseed.recipe.task import HashedNgramTokenizer

#: The BLAKE2b personalisation string (at most 16 bytes) that scopes fedseed's hash.
PERSON = b"fedseed-ngrams"
#: Id of padding positions (never produced by a feature).
NGRAM_PAD_ID = 0
_WORD = re.compile(r"[^\W_]+|[^\w\s]|_")
_PUNCTUATION = re.compile(r"[^\w\s]|_")
_SEP = "\x1f"


def words_of(text: str, lowercase: bool) -> list[str]:
    """The words of ``text`` as the tokenizer splits them (rule 2)."""
    return _WORD.findall(text.lower() if lowercase else text)


def features(text: str, tokenizer: HashedNgramTokenizer) -> Iterator[str]:
    """The feature strings of ``text`` before hashing, in order (rule 3)."""
    words = words_of(text, tokenizer.lowercase)
    if tokenizer.word_ngrams is not None:
        low, high = tokenizer.word_ngrams
        for n in range(low, high + 1):
            for i in range(len(words) - n + 1):
                yield "w" + _SEP.join(words[i:i + n])
    if tokenizer.char_ngrams is not None:
        low, high = tokenizer.char_ngrams
        for word in words:
            if _PUNCTUATION.fullmatch(word):
                continue
            marked = f"<{word}>"
            for n in range(low, high + 1):
                for i in range(len(marked) - n + 1):
                    yield "c" + marked[i:i + n]


@lru_cache(maxsize=1 << 18)
def feature_hash(feature: str) -> int:
    """The unsigned 64-bit BLAKE2b hash of one feature string (rule 4)."""
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8, person=PERSON).digest()
    return int.from_bytes(digest, "little")


def ngram_ids(text: str, tokenizer: HashedNgramTokenizer) -> list[int]:
    """The ids of ``text``: hashed features, at most ``max_tokens`` of them."""
    ids: list[int] = []
    buckets, limit = tokenizer.buckets, tokenizer.max_tokens
    for feature in features(text, tokenizer):
        ids.append(1 + feature_hash(feature) % buckets)
        if len(ids) == limit:
            break
    return ids
