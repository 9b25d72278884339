r"""The Joint Many-Task model: recurrent layers stacked by task depth (lecture B3).

Hashimoto, Xiong, Tsuruoka and Socher, "A Joint Many-Task Model: Growing a
Neural Network for Multiple NLP Tasks" (EMNLP 2017, arXiv 1611.01587). Task
:math:`k` (in order of linguistic depth) owns the :math:`k`-th bidirectional
recurrent layer and reads its prediction there. Two devices carry the lower
tasks up the stack:

* **shortcut connections**: every layer reads the word representation
  :math:`x_t` besides the layer below;
* **label embeddings**: every token-level task :math:`j` below passes up the
  expected embedding of its label, the average of the label embeddings
  :math:`\ell(c)` weighted by the predicted probabilities,

.. math::

    y^{(j)}_t = \sum_{c=1}^{C_j} p\big(y^{(j)}_t = c \mid h^{(j)}_t\big)\, \ell^{(j)}(c), \qquad
    h^{(k)}_t = \operatorname{BiGRU}^{(k)}\big([h^{(k-1)}_t;\ x_t;\ y^{(1)}_t; \dots; y^{(k-1)}_t]\big).

The last task is a sentence-pair task: each sentence is max-pooled over time,
:math:`s = \max_t h^{(K)}_t`, and the pair is classified from
:math:`[\,|s_a - s_b|;\ s_a \odot s_b\,]` (the paper's relatedness features).
The course uses GRUs where the paper uses LSTMs, a single linear layer as
each classifier (the paper's classifiers differ), and three tasks.

The ablation ``hierarchy=False`` keeps the same stack of layers with the
shortcuts but reads every task from the top layer, without label embeddings.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import torch
from torch import nn
from torch.nn import functional as F

from mtl_course.models.base import MultiTaskModel, check_task_outputs


class JointManyTask(MultiTaskModel):
    """Bidirectional GRU layers stacked by task depth; one head per task at its own layer.

    ``tasks`` maps each task to its number of classes, **in order of depth**:
    every task but the last is tagged per word, the last is a sentence-pair
    task. ``model(x)`` takes word indices ``x`` of shape ``(B, 2, L)`` (a pair
    of sentences, index ``pad_index`` pads) and returns per word task logits
    ``(B, C, 2, L)`` and for the pair task ``(B, C)``.

    Parameters used by more than one task are shared (the word embeddings and
    every layer below the top one; with ``hierarchy=False`` the whole stack);
    a task's own parameters are its classifier, its label embeddings, and in
    the hierarchy the top layer for the top task.

    >>> model = JointManyTask(10, {"pos": 5, "chunk": 4, "relation": 3})
    >>> {t: tuple(y.shape) for t, y in model(torch.ones(2, 2, 7, dtype=torch.long)).items()}
    {'pos': (2, 5, 2, 7), 'chunk': (2, 4, 2, 7), 'relation': (2, 3)}
    >>> model.parameter_counts()
    {'shared': 10528, 'pos': 205, 'chunk': 164, 'relation': 8067, 'total': 18964}
    """

    def __init__(
        self,
        vocab_size: int,
        tasks: Mapping[str, int],
        *,
        embedding_dim: int = 16,
        hidden: int = 16,
        label_dim: int = 8,
        hierarchy: bool = True,
        pad_index: int = 0,
    ) -> None:
        tasks = check_task_outputs(tasks)
        super().__init__(list(tasks))
        if len(tasks) < 2:
            raise ValueError(
                f"the Joint Many-Task model needs a word-level task and a pair task, got tasks {list(tasks)}"
            )
        for name, size in (("vocab_size", vocab_size), ("embedding_dim", embedding_dim), ("hidden", hidden)):
            if size < 1:
                raise ValueError(f"{name} must be positive, got {size}")
        if hierarchy and label_dim < 1:
            raise ValueError(f"label_dim must be positive, got {label_dim}")
        self.hierarchy, self.pad_index = hierarchy, pad_index
        self._top = len(self.tasks)  # how many layers forward() runs; see up_to()
        self.word_tasks, self.pair_task = self.tasks[:-1], self.tasks[-1]
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_index)
        layers = []
        for k in range(len(self.tasks)):
            width = embedding_dim if k == 0 else 2 * hidden + embedding_dim + (k * label_dim if hierarchy else 0)
            layers.append(nn.GRU(width, hidden, batch_first=True, bidirectional=True))
        self.layers = nn.ModuleList(layers)
        self.heads = nn.ModuleDict({t: nn.Linear(2 * hidden, c) for t, c in tasks.items() if t != self.pair_task})
        self.heads[self.pair_task] = nn.Linear(4 * hidden, tasks[self.pair_task])
        self.label_embeddings = nn.ModuleDict(
            {t: nn.Linear(tasks[t], label_dim, bias=False) for t in self.word_tasks} if hierarchy else {}
        )

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 3 or x.shape[1] != 2:
            raise ValueError(
                f"JointManyTask expects word indices of shape (B, 2, L), a pair of sentences; got {tuple(x.shape)}"
            )
        if x.dtype.is_floating_point or x.dtype == torch.bool:
            raise TypeError(f"JointManyTask expects integer word indices, got dtype {x.dtype}")

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self._check_input(x)
        B, _, L = x.shape
        words = x.reshape(2 * B, L)
        e = self.embedding(words)
        h = e
        labels: list[torch.Tensor] = []
        logits: dict[str, torch.Tensor] = {}
        for k, task in enumerate(self.tasks[: self._top]):
            inputs = [e] if k == 0 else [h, e, *labels]
            h, _ = self.layers[k](torch.cat(inputs, dim=-1))
            if self.hierarchy and task in self.word_tasks:
                logits[task] = self.heads[task](h)
                labels.append(self.label_embedding(task, logits[task]))
        if not self.hierarchy:
            logits = {t: self.heads[t](h) for t in self.word_tasks}
        out = {t: y.reshape(B, 2, L, -1).permute(0, 3, 1, 2) for t, y in logits.items()}
        if self._top == len(self.tasks):
            out[self.pair_task] = self.heads[self.pair_task](pair_features(h, words != self.pad_index, B))
        return {t: out[t] for t in self.tasks if t in out}

    @contextlib.contextmanager
    def up_to(self, task: str) -> Iterator[None]:
        """Within the context, ``forward`` stops at ``task``'s layer and returns only the tasks up to it.

        A task's turn (lecture B3) needs nothing above it; skipping those layers saves their cost. Without the
        hierarchy every task reads the top layer, so the whole stack runs.

        >>> model = JointManyTask(10, {"pos": 5, "chunk": 4, "relation": 3})
        >>> with model.up_to("pos"):
        ...     list(model(torch.ones(1, 2, 3, dtype=torch.long)))
        ['pos']
        """
        previous = self._top
        self._top = self.depth(task) + 1 if self.hierarchy else len(self.tasks)
        try:
            yield
        finally:
            self._top = previous

    def label_embedding(self, task: str, logits: torch.Tensor) -> torch.Tensor:
        r""":math:`y_t = \sum_c p(c \mid h_t)\, \ell(c)`: label embeddings averaged by the predicted probabilities."""
        return self.label_embeddings[task](F.softmax(logits, dim=-1))

    def depth(self, task: str) -> int:
        """The index of ``task``'s layer slot in the stack (0 = the lowest)."""
        self.check_task(task)
        return self.tasks.index(task)

    def lower_parameters(self, task: str) -> Iterator[nn.Parameter]:
        r""":math:`\theta_{\text{lower}}` of ``task``: the word embeddings and every layer, head and label embedding
        of the tasks below it (for the lowest task: the embeddings only), as successive regularisation needs."""
        k = self.depth(task)
        yield from self.embedding.parameters()
        for j, lower in enumerate(self.tasks[:k]):
            yield from self.layers[j].parameters()
            yield from self.heads[lower].parameters()
            if lower in self.label_embeddings:
                yield from self.label_embeddings[lower].parameters()

    def _own_layer(self, task: str) -> bool:
        return self.hierarchy and task == self.pair_task

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.embedding.parameters()
        for k, task in enumerate(self.tasks):
            if not self._own_layer(task):
                yield from self.layers[k].parameters()

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        self.check_task(task)
        if self._own_layer(task):
            yield from self.layers[self.depth(task)].parameters()
        yield from self.heads[task].parameters()
        if task in self.label_embeddings:
            yield from self.label_embeddings[task].parameters()

    def last_shared_layer(self) -> list[nn.Parameter]:
        """The highest layer every task reads: the first in the hierarchy, the top one without it (for GradNorm)."""
        return list(self.layers[0 if self.hierarchy else -1].parameters())

    def extra_repr(self) -> str:
        reads = "each task at its own depth" if self.hierarchy else "every task from the top layer"
        return self.describe_sharing(shared=f"embedding + lower layers ({reads})", task_specific="heads.<task>")


def pair_features(h: torch.Tensor, mask: torch.Tensor, pairs: int) -> torch.Tensor:
    r"""The pair features :math:`[\,|s_a - s_b|;\ s_a \odot s_b\,]` of max-pooled sentences :math:`s = \max_t h_t`.

    ``h`` is ``(2 B, L, D)`` (sentence ``2 i`` and ``2 i + 1`` form pair ``i``),
    ``mask`` ``(2 B, L)`` marks the words (padding is left out of the max).

    >>> h = torch.tensor([[[1.0], [5.0]], [[2.0], [0.0]]])
    >>> pair_features(h, torch.tensor([[True, False], [True, True]]), 1)
    tensor([[1., 2.]])
    """
    pooled = h.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)
    s = pooled.reshape(pairs, 2, -1)
    a, b = s[:, 0], s[:, 1]
    return torch.cat([(a - b).abs(), a * b], dim=-1)
