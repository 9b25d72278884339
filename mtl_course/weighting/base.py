r"""The one interface behind which every loss-weighting and gradient method sits.

A :class:`WeightingMethod` turns the per-task losses of one mini-batch into
the parameter update: it writes (accumulates into) ``.grad`` of every
parameter of the model. The optimiser step stays with the caller.

Convention for task-specific parameters (LibMTL's, made explicit):

* **Loss-weighting methods** (equal, fixed, uncertainty, GradNorm, DWA, RLW)
  back-propagate the scalar objective :math:`\sum_i w_i L_i` (plus their own
  regulariser); a head therefore receives :math:`w_i \nabla L_i`.
* **Gradient methods** (MGDA, PCGrad, CAGrad, IMTL-G; subclasses of
  :class:`GradientWeighting`) combine the per-task gradients of the *shared*
  part only; each head receives the gradient of its *own, unweighted* loss,
  as in Algorithm 2 of Sener & Koltun (NeurIPS 2018, arXiv 1810.04650).

``backward`` returns the effective task weights as a detached 1-D tensor in
``method.tasks`` order (zero for deactivated tasks). It stays on the device:
a dict of Python floats would force a host-device synchronisation every
step; ``dict(zip(method.tasks, weights.tolist()))`` gives one for logging.

>>> import torch
>>> from mtl_course.weighting import get_weighting
>>> method = get_weighting("fixed", ["a", "b"], weights={"a": 1.0, "b": 0.5})
>>> p = torch.nn.Parameter(torch.tensor(2.0))
>>> method.backward({"a": p**2, "b": 3 * p}).tolist()
[1.0, 0.5]
>>> p.grad.item()  # 1.0 * 2p + 0.5 * 3
5.5
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar

import torch
from torch import nn

from mtl_course.models.base import MultiTaskModel

Losses = Mapping[str, torch.Tensor]


class WeightingMethod(nn.Module):
    """Base class: task bookkeeping, input checks, and the ``backward`` contract.

    Subclasses implement :meth:`_backward`, which receives the losses of the
    active tasks (in ``self.active`` order, stacked into one tensor) and
    returns their weights. Learnable weights are ``nn.Parameter`` s of the
    method, so ``method.to(device)`` moves them and ``method.parameters()``
    hands them to the optimiser.

    ``grad_scale`` (a 0-dim tensor, the current scale of a
    ``torch.amp.GradScaler``) multiplies whatever is back-propagated, so fp16
    training works; methods whose internal state depends on gradient norms
    (GradNorm) divide it out again.
    """

    requires_representation: bool = False
    needs_model: ClassVar[bool] = False

    def __init__(self, tasks: Sequence[str]) -> None:
        super().__init__()
        tasks = list(tasks)
        if not tasks:
            raise ValueError(f"{type(self).__name__} needs at least one task, got an empty list")
        if len(set(tasks)) != len(tasks):
            raise ValueError(f"task names must be unique, got {tasks}")
        self.tasks: list[str] = tasks
        self.active: list[str] = list(tasks)
        self.register_buffer("active_index", torch.arange(len(tasks)), persistent=False)

    # -- the public contract ------------------------------------------------
    def backward(
        self,
        losses: Losses,
        model: MultiTaskModel | None = None,
        *,
        representation: torch.Tensor | None = None,
        grad_scale: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Write the update into ``.grad`` and return the effective weights.

        ``losses`` must hold one 0-dim loss per active task. ``model`` is
        needed by gradient methods and GradNorm; ``representation`` (the
        output of ``model.encode``) by methods with
        ``requires_representation``.
        """
        self._check_losses(losses)
        if self.needs_model and model is None:
            raise ValueError(f"{type(self).__name__}.backward needs the model, got model=None")
        if self.requires_representation and representation is None:
            raise ValueError(
                f"{type(self).__name__} works on the shared representation: pass "
                "representation=model.encode(x) and compute the outputs with model.decode"
            )
        stacked = torch.stack([losses[t] for t in self.active])
        return self._every_task(self._backward(stacked, model, representation, grad_scale))

    def on_epoch_end(self, epoch_mean_losses: Mapping[str, float]) -> None:
        """Hook called once per epoch with the epoch-average training losses."""

    def deactivate(self, task: str) -> None:
        """Stop ``task``: from now on ``backward`` expects no loss for it.

        Used by task-wise early stopping (TCDCN, Zhang et al., ECCV 2014).
        """
        if task not in self.active:
            raise KeyError(f"cannot deactivate {task!r}: the active tasks are {self.active}")
        if len(self.active) == 1:
            raise ValueError(f"cannot deactivate {task!r}, the last active task")
        self.active.remove(task)
        self.active_index = torch.tensor([self.tasks.index(t) for t in self.active], device=self.active_index.device)

    # -- for subclasses --------------------------------------------------------
    def _backward(
        self,
        losses: torch.Tensor,
        model: MultiTaskModel | None,
        representation: torch.Tensor | None,
        grad_scale: torch.Tensor | None,
    ) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _every_task(self, active_weights: torch.Tensor) -> torch.Tensor:
        """The detached weights of the active tasks spread over ``self.tasks`` (zero for a deactivated task)."""
        active_weights = active_weights.detach()
        if len(self.active) == len(self.tasks):
            return active_weights
        weights = active_weights.new_zeros(len(self.tasks))
        return weights.index_copy_(0, self.active_index, active_weights)

    @staticmethod
    def _scaled(objective: torch.Tensor, grad_scale: torch.Tensor | None) -> torch.Tensor:
        return objective if grad_scale is None else objective * grad_scale

    def _check_losses(self, losses: Losses) -> None:
        if len(losses) == len(self.active) and all(map(losses.__contains__, self.active)):  # exactly the active
            for task in self.active:
                if losses[task].dim() != 0:
                    raise ValueError(
                        f"the loss of task {task!r} must be a 0-dim tensor, got shape {tuple(losses[task].shape)}"
                    )
            return
        missing = [t for t in self.active if t not in losses]
        extra = [t for t in losses if t not in self.active]
        inactive = [t for t in extra if t in self.tasks]
        hint = f" (deactivated: {inactive})" if inactive else ""
        raise KeyError(
            f"{type(self).__name__} expected one loss per active task {self.active}, "
            f"got {list(losses)}: missing {missing}, unexpected {extra}{hint}"
        )

    def extra_repr(self) -> str:
        return f"tasks={self.tasks}"


class LossWeighting(WeightingMethod):
    r"""A method that back-propagates :math:`\sum_i w_i L_i`; subclasses implement :meth:`weights`."""

    def weights(self, losses: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Weights of the active tasks for the stacked losses ``losses``."""
        raise NotImplementedError

    def _backward(self, losses, model, representation, grad_scale):
        weights = self.weights(losses)
        self._scaled((weights * losses).sum(), grad_scale).backward()
        return weights


# -- registry -------------------------------------------------------------------
_REGISTRY: dict[str, Callable[..., WeightingMethod]] = {}

_NOT_PROVIDED = {
    "nash_mtl": (
        "Nash-MTL (Navon et al., ICML 2022, arXiv 2202.01017) is not provided: its "
        "solver needs cvxpy, which this course does not install, and the course "
        "never falls back silently to another method"
    ),
}


def register(name: str) -> Callable[[Callable[..., WeightingMethod]], Callable[..., WeightingMethod]]:
    """Class (or factory) decorator that makes a method available by ``name``."""

    def decorate(factory: Callable[..., WeightingMethod]) -> Callable[..., WeightingMethod]:
        if name in _REGISTRY:
            raise ValueError(f"weighting method {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return decorate


def available_methods() -> list[str]:
    """Names accepted by :func:`get_weighting`, sorted.

    >>> "mgda_ub" in available_methods()
    True
    """
    return sorted(_REGISTRY)


def get_weighting(name: str, tasks: Sequence[str], **hyper: object) -> WeightingMethod:
    """Construct the weighting method ``name`` for ``tasks`` with its hyper-parameters.

    >>> get_weighting("equal", ["a", "b"])
    EqualWeighting(tasks=['a', 'b'])
    >>> get_weighting("nash", ["a"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    KeyError: "unknown weighting method 'nash'; known methods: ['cagrad', 'dwa', ..., 'rlw', 'uncertainty']"
    """
    if name not in _REGISTRY:
        note = f"; {_NOT_PROVIDED[name]}" if name in _NOT_PROVIDED else ""
        raise KeyError(f"unknown weighting method {name!r}; known methods: {available_methods()}{note}")
    factory = _REGISTRY[name]
    try:
        return factory(tasks, **hyper)
    except TypeError:
        try:  # the hyper-parameters are checked against the signature only now: inspecting it costs every call
            inspect.signature(factory).bind(tasks, **hyper)
        except TypeError as err:
            accepted = [p for p in inspect.signature(factory).parameters if p != "tasks"]
            raise TypeError(
                f"weighting method {name!r} accepts the hyper-parameters {accepted}, got {sorted(hyper)} ({err})"
            ) from None
        raise  # the arguments fit the signature: the error comes from inside the method
