"""The toy language of lecture B3: exact tags, chunks that follow from the tags, relations that follow from chunks."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_course.data import IGNORE_INDEX, make_toy_language
from mtl_course.data.toy_language import (
    CHUNK_TAGS,
    MAX_LEN,
    POS_TAGS,
    RELATIONS,
    VOCABULARY,
    chunk_tags,
    sentence_words,
)


def _tags(data, i, side, task, names):
    return [names[t] for t in data.targets[task][i, side] if t != IGNORE_INDEX]


def _heads(data, i, side):
    """Brute force from the words and tags: (subject head, verb, object head) = nouns 1 and 2, the verb."""
    words, tags = sentence_words(data, i, side), _tags(data, i, side, "pos", POS_TAGS)
    nouns = [w for w, t in zip(words, tags, strict=True) if t == "NOUN"]
    verb = next(w for w, t in zip(words, tags, strict=True) if t == "VERB")
    return nouns[0], verb, nouns[1]


def test_shapes_padding_and_balanced_relations() -> None:
    data = make_toy_language(30, seed=1)
    assert data.x.shape == (30, 2, MAX_LEN) and data.targets["relation"].shape == (30,)
    pad = data.x == 0
    for task in ("pos", "chunk"):
        assert ((data.targets[task] == IGNORE_INDEX) == pad).all(), f"{task}: labels must be missing exactly at pads"
    assert np.bincount(data.targets["relation"]).tolist() == [10, 10, 10]
    assert ((~pad).sum(-1) >= 5).all() and ((~pad).sum(-1) <= MAX_LEN).all()


def test_same_seed_same_data_other_seed_other_data() -> None:
    a, b, c = make_toy_language(20, seed=3), make_toy_language(20, seed=3), make_toy_language(20, seed=4)
    assert np.array_equal(a.x, b.x) and not np.array_equal(a.x, c.x)


def test_chunks_follow_from_the_tags_and_relations_from_the_heads() -> None:
    data = make_toy_language(60, seed=2)
    for i in range(data.n):
        for side in (0, 1):
            pos = _tags(data, i, side, "pos", POS_TAGS)
            assert _tags(data, i, side, "chunk", CHUNK_TAGS) == chunk_tags(pos)
        (s_a, v_a, o_a), (s_b, v_b, o_b) = _heads(data, i, 0), _heads(data, i, 1)
        relation = RELATIONS[data.targets["relation"][i]]
        if relation == "same":
            assert (s_b, v_b, o_b) == (s_a, v_a, o_a)
        elif relation == "swapped":
            assert (s_b, v_b, o_b) == (o_a, v_a, s_a)
        else:
            assert sum(p != q for p, q in [(s_a, s_b), (v_a, v_b), (o_a, o_b)]) == 1


def test_ambiguous_words_need_the_context() -> None:
    data = make_toy_language(200, seed=0)
    tags_of = {}
    for word, tag in zip(data.x[data.x > 0], data.targets["pos"][data.x > 0], strict=True):
        tags_of.setdefault(VOCABULARY[word], set()).add(POS_TAGS[tag])
    assert tags_of["watch"] == {"NOUN", "VERB"} and tags_of["dog"] == {"NOUN"}


@pytest.mark.parametrize("n", [0, -3, 2.5, True])
def test_bad_sizes_are_refused(n) -> None:
    with pytest.raises(ValueError, match="n_pairs must be a positive int"):
        make_toy_language(n)


def test_bad_tags_and_sides_are_named() -> None:
    with pytest.raises(ValueError, match=r"unknown POS tag\(s\) \['NN'\]"):
        chunk_tags(["DET", "NN"])
    with pytest.raises(ValueError, match="side must be 0"):
        sentence_words(make_toy_language(2), 0, 2)
    assert chunk_tags([]) == []
