r"""A seeded toy language for the Joint Many-Task model (lecture B3): tags, chunks and a sentence-pair relation.

Hashimoto, Xiong, Tsuruoka and Socher, "A Joint Many-Task Model: Growing a
Neural Network for Multiple NLP Tasks" (EMNLP 2017, arXiv 1611.01587) stack
tasks of increasing linguistic depth: part-of-speech tags (words), chunks
(spans built from the tags), dependencies, and two sentence-pair tasks
(relatedness, entailment). This generator keeps three levels of that
hierarchy with exact labels:

* **pos** (low level, per word): ``DET ADJ NOUN VERB PREP``. Some words are
  ambiguous (``watch``, ``fish``, ... are a NOUN after a determiner or an
  adjective and a VERB after the subject), so the tag needs the context.
* **chunk** (mid level, per word, BIO): ``B-NP I-NP B-VP B-PP``, a function of
  the tags alone: ``DET (ADJ) NOUN`` is a noun phrase, a verb a verb
  phrase, a preposition opens a prepositional phrase.
* **relation** (high level, per sentence pair): sentence ``b`` is made from
  sentence ``a`` and the pair is ``same`` (same subject head, verb and object
  head; determiners, adjectives and the prepositional phrase redrawn),
  ``swapped`` (subject and object noun phrases exchanged: who does what to
  whom is reversed), or ``different`` (one of the three heads replaced).
  To tell them apart a reader must know which noun heads which noun phrase,
  and which noun phrase is the subject: the chunks.

The grammar is ``S -> NP VERB NP [PP]``, ``NP -> DET [ADJ] NOUN``,
``PP -> PREP NP``: 5 to 10 words.

What it leaves out: real words, long sentences, the dependency task, label
noise, and the paper's different data sets per task (WSJ for tags and
chunks, SICK for the pair tasks); here every pair carries every label.
"""

from __future__ import annotations

import numpy as np

from mtl_course.data.tasks import IGNORE_INDEX, MultiTaskData

POS_TAGS = ("DET", "ADJ", "NOUN", "VERB", "PREP")
CHUNK_TAGS = ("B-NP", "I-NP", "B-VP", "B-PP")
RELATIONS = ("same", "swapped", "different")
#: The longest sentence of the grammar: DET ADJ NOUN VERB DET ADJ NOUN PREP DET ADJ NOUN has 11 words.
MAX_LEN = 11
PAD = "<pad>"

_DETERMINERS = ("the", "a", "every", "this")
_ADJECTIVES = ("big", "small", "red", "old", "quick")
_NOUNS = ("dog", "cat", "bird", "man", "girl", "ball", "tree", "boat")
_VERBS = ("sees", "likes", "chases", "finds", "takes")
#: Words that are a NOUN inside a noun phrase and a VERB after the subject.
_AMBIGUOUS = ("watch", "fish", "park", "duck", "saw")
_PREPOSITIONS = ("near", "under", "with", "behind")
#: Index 0 is the padding token.
VOCABULARY = (PAD, *_DETERMINERS, *_ADJECTIVES, *_NOUNS, *_VERBS, *_AMBIGUOUS, *_PREPOSITIONS)
_INDEX = {word: i for i, word in enumerate(VOCABULARY)}
_HEAD_NOUNS = _NOUNS + _AMBIGUOUS
_HEAD_VERBS = _VERBS + _AMBIGUOUS

Phrase = list[tuple[str, str]]  # (word, POS tag)


def _noun_phrase(rng: np.random.Generator, head: str) -> Phrase:
    phrase = [(str(rng.choice(_DETERMINERS)), "DET")]
    if rng.random() < 0.5:
        phrase.append((str(rng.choice(_ADJECTIVES)), "ADJ"))
    return [*phrase, (head, "NOUN")]


def _sentence(rng: np.random.Generator, subject: str, verb: str, obj: str) -> Phrase:
    words = [*_noun_phrase(rng, subject), (verb, "VERB"), *_noun_phrase(rng, obj)]
    if rng.random() < 0.5:
        words += [(str(rng.choice(_PREPOSITIONS)), "PREP"), *_noun_phrase(rng, str(rng.choice(_HEAD_NOUNS)))]
    return words


def chunk_tags(pos: list[str]) -> list[str]:
    """The BIO chunk of every word, computed from the POS tags alone (the mid-level task depends on the low one).

    >>> chunk_tags(["DET", "ADJ", "NOUN", "VERB", "DET", "NOUN", "PREP", "DET", "NOUN"])
    ['B-NP', 'I-NP', 'I-NP', 'B-VP', 'B-NP', 'I-NP', 'B-PP', 'B-NP', 'I-NP']
    """
    unknown = [t for t in pos if t not in POS_TAGS]
    if unknown:
        raise ValueError(f"unknown POS tag(s) {unknown}; the tags are {list(POS_TAGS)}")
    rule = {"DET": "B-NP", "ADJ": "I-NP", "NOUN": "I-NP", "VERB": "B-VP", "PREP": "B-PP"}
    return [rule[t] for t in pos]


def _other(rng: np.random.Generator, choices: tuple[str, ...], word: str) -> str:
    return str(rng.choice([c for c in choices if c != word]))


def _pair(rng: np.random.Generator, relation: str) -> tuple[Phrase, Phrase]:
    subject, obj = (str(w) for w in rng.choice(_HEAD_NOUNS, size=2, replace=False))
    verb = str(rng.choice(_HEAD_VERBS))
    a = _sentence(rng, subject, verb, obj)
    if relation == "same":
        return a, _sentence(rng, subject, verb, obj)
    if relation == "swapped":
        return a, _sentence(rng, obj, verb, subject)
    slot = rng.integers(3)
    if slot == 0:
        subject = _other(rng, _HEAD_NOUNS, subject)
    elif slot == 1:
        verb = _other(rng, _HEAD_VERBS, verb)
    else:
        obj = _other(rng, _HEAD_NOUNS, obj)
    return a, _sentence(rng, subject, verb, obj)


def _encode(sentence: Phrase) -> tuple[list[int], list[int], list[int]]:
    pad = MAX_LEN - len(sentence)
    words = [_INDEX[w] for w, _ in sentence] + [0] * pad
    tags = [t for _, t in sentence]
    pos = [POS_TAGS.index(t) for t in tags] + [IGNORE_INDEX] * pad
    chunks = [CHUNK_TAGS.index(c) for c in chunk_tags(tags)] + [IGNORE_INDEX] * pad
    return words, pos, chunks


def make_toy_language(n_pairs: int = 300, seed: int = 0) -> MultiTaskData:
    """``n_pairs`` sentence pairs with POS tags, BIO chunks and a pair relation (balanced classes).

    ``x`` is ``(n, 2, MAX_LEN)`` word indices (0 pads); ``targets["pos"]``
    and ``targets["chunk"]`` are ``(n, 2, MAX_LEN)`` class indices with
    ``-100`` at the padding, ``targets["relation"]`` is ``(n,)``. ``info``
    holds the ``vocabulary`` and the names of the ``pos_tags``,
    ``chunk_tags`` and ``relations``.

    >>> data = make_toy_language(6, seed=0)
    >>> data.x.shape, data.targets["pos"].shape, data.targets["relation"].tolist()
    ((6, 2, 11), (6, 2, 11), [0, 1, 2, 0, 1, 2])
    >>> " ".join(sentence_words(data, 0, 0))
    'a big park chases the watch'
    """
    if not isinstance(n_pairs, int) or isinstance(n_pairs, bool) or n_pairs < 1:
        raise ValueError(f"n_pairs must be a positive int, got {n_pairs!r}")
    rng = np.random.default_rng(seed)
    x = np.zeros((n_pairs, 2, MAX_LEN), dtype=np.int64)
    pos = np.full((n_pairs, 2, MAX_LEN), IGNORE_INDEX, dtype=np.int64)
    chunk = np.full((n_pairs, 2, MAX_LEN), IGNORE_INDEX, dtype=np.int64)
    relation = np.arange(n_pairs, dtype=np.int64) % len(RELATIONS)
    for i in range(n_pairs):
        for side, sentence in enumerate(_pair(rng, RELATIONS[relation[i]])):
            x[i, side], pos[i, side], chunk[i, side] = _encode(sentence)
    info = {"vocabulary": VOCABULARY, "pos_tags": POS_TAGS, "chunk_tags": CHUNK_TAGS, "relations": RELATIONS}
    return MultiTaskData(x, {"pos": pos, "chunk": chunk, "relation": relation}, info=info)


def sentence_words(data: MultiTaskData, pair: int, side: int) -> list[str]:
    """The words of sentence ``side`` (0 or 1) of pair ``pair``, without the padding."""
    if side not in (0, 1):
        raise ValueError(f"side must be 0 (first sentence) or 1 (second), got {side!r}")
    return [VOCABULARY[int(i)] for i in np.asarray(data.x[pair, side]) if i != 0]
