"""The closure's loss as a function of one flat parameter vector, for the closure optimizers.

Second-order methods think in one vector ``theta`` of all parameters; torch keeps them as many
tensors. ``FlatObjective`` bridges the two: it reads and writes ``theta``, evaluates the
closure's loss (plus the groups' L2 weight decay, as part of the objective, so the Hessian
sees it too), its gradient, Hessian- or Gauss-Newton-vector products and the dense Hessian.

A closure may follow torch's convention (zero the gradients, call ``loss.backward()``, return
the loss) or simply return the loss: curvature needs the loss's graph, and ``backward()``
would free it, so while the curvature methods evaluate the closure its ``backward()`` call is
intercepted (``torch.overrides.TorchFunctionMode``) and the gradients are taken here.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.overrides import TorchFunctionMode

from cnnlab.errors import ConfigError
from cnnlab.optim.line_search import LineSearchResult, strong_wolfe
from cnnlab.optim.registry import register_optimizer

Closure = Callable[[], torch.Tensor]


def require_closure(method: str, closure: Closure | None) -> Closure:
    """The closure, or a ``ConfigError`` explaining that ``method`` re-evaluates the loss."""
    if closure is None:
        raise ConfigError(
            f"{method} re-evaluates the loss during a step: call optimizer.step(closure) with a "
            f"closure that computes the loss on the current batch (and may call backward())"
        )
    return closure


#: losses whose Hessian in the network's output is positive semi-definite: with one of them as
#: the closure's loss, the Gauss-Newton matrix ``J^T H_L J`` is available (Martens 2010)
_CONVEX_LOSSES = (
    torch.nn.functional.cross_entropy,
    torch.nn.functional.nll_loss,
    torch.nn.functional.mse_loss,
    torch.nn.functional.binary_cross_entropy_with_logits,
    torch.nn.functional.huber_loss,
    torch.nn.functional.smooth_l1_loss,
)


def no_gradient(method: str) -> ConfigError:
    """The error for a closure whose loss does not depend on the parameters."""
    return ConfigError(
        f"{method}'s closure returned a loss that does not depend on the optimizer's "
        f"parameters (it has no gradient): compute it from the model's output, not under "
        f"torch.no_grad() or from detached values"
    )


class GuardBackward(TorchFunctionMode):
    """Turn a closure's ``backward()`` on a loss without gradient into ``no_gradient``."""

    def __init__(self, method: str):
        super().__init__()
        self.method = method

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.Tensor.backward and not args[0].requires_grad:
            raise no_gradient(self.method)
        return func(*args, **(kwargs or {}))


class _KeepGraph(TorchFunctionMode):
    """Skip ``Tensor.backward`` inside a closure so the loss keeps its graph for curvature.

    Also notes each call of a convex loss, ``(network output, loss)``, for Gauss-Newton products.
    """

    def __init__(self):
        super().__init__()
        self.losses: list[tuple[torch.Tensor, torch.Tensor]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.Tensor.backward:
            return None
        result = func(*args, **(kwargs or {}))
        if func in _CONVEX_LOSSES and isinstance(args[0], torch.Tensor):
            self.losses.append((args[0], result))
        return result


#: the dtypes the flat methods work in: line searches compare values that differ by
#: ``c1 t f'(0)``, far below bfloat16's 3 significant digits, and Cholesky needs float32/64
FLAT_DTYPES = (torch.float32, torch.float64)


class FlatObjective:
    """The loss of a closure over the optimizer's parameter groups, seen as ``f(theta)``.

    Built afresh from the groups at every step, so that a group added by ``add_param_group``,
    a ``weight_decay`` changed by hand or by ``load_state_dict``, and a deep-copied or
    unpickled optimizer (which keeps only its groups and state) all take effect.

    Args:
        param_groups: the optimizer's groups; each group's ``weight_decay`` adds
            ``weight_decay / 2 * ||p||^2`` to the objective.
        method: the optimizer's name, for messages.
    """

    def __init__(self, param_groups: list[dict], method: str = "this optimizer"):
        self.method = method
        self.groups = [
            (float(g.get("weight_decay", 0.0)), [p for p in g["params"] if p.requires_grad])
            for g in param_groups
        ]
        self.params = [p for _, ps in self.groups for p in ps]
        if not self.params:
            raise ConfigError(f"{method} has no trainable parameters (requires_grad=True) to step")
        dtypes = {p.dtype for p in self.params}
        if not dtypes <= set(FLAT_DTYPES):
            names = ", ".join(sorted(str(d).removeprefix("torch.") for d in dtypes))
            raise ConfigError(
                f"{method} works on float32 or float64 parameters, got {names}: its line "
                f"search and curvature need that precision (complex parameters: train the "
                f"real and imaginary parts as two real tensors); convert the model with "
                f"model.float()"
            )
        self.numel = sum(p.numel() for p in self.params)
        self._graph_grads: list[torch.Tensor] | None = None
        self._gauss_newton: tuple | None = None

    @property
    def dtype(self) -> torch.dtype:
        return self.params[0].dtype

    def get(self) -> torch.Tensor:
        """A copy of all parameters as one vector."""
        return torch.cat([p.detach().reshape(-1) for p in self.params])

    @torch.no_grad()
    def set(self, theta: torch.Tensor) -> None:
        """Write ``theta`` back into the parameters (in place, so the model sees it)."""
        offset = 0
        for p in self.params:
            p.copy_(theta[offset : offset + p.numel()].view_as(p))
            offset += p.numel()

    def flat(self, tensors: list[torch.Tensor | None]) -> torch.Tensor:
        """Concatenate per-parameter tensors (``None`` as zeros) into one vector."""
        return torch.cat(
            [
                torch.zeros(p.numel(), dtype=p.dtype, device=p.device)
                if t is None
                else t.reshape(-1)
                for p, t in zip(self.params, tensors, strict=True)
            ]
        )

    def _decay(self) -> torch.Tensor | None:
        """Each element's weight decay as one vector, or ``None`` when there is none."""
        if not any(wd for wd, _ in self.groups):
            return None
        p0 = self.params[0]
        return torch.cat(
            [
                torch.full((p.numel(),), wd, dtype=p0.dtype, device=p0.device)
                for wd, ps in self.groups
                for p in ps
            ]
        )

    def _l2(self) -> torch.Tensor | float:
        return sum(0.5 * wd * sum(p.pow(2).sum() for p in ps) for wd, ps in self.groups if wd)

    def checked_loss(self, loss: object, needs_grad: bool) -> torch.Tensor:
        """The closure's result, checked: one real number that depends on the parameters."""
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            got = f"shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else repr(loss)
            raise ConfigError(
                f"{self.method}'s closure must return the loss as a one-element tensor, got {got}"
            )
        if needs_grad and not loss.requires_grad:
            raise no_gradient(self.method)
        return loss.reshape(())

    def value(self, closure: Closure) -> float:
        """The objective at the current parameters, without gradients (for line searches)."""
        with torch.no_grad(), _KeepGraph():
            return float(self.checked_loss(closure(), needs_grad=False)) + float(self._l2())

    def value_and_grad(self, closure: Closure) -> tuple[float, torch.Tensor]:
        """The objective and its gradient, by the closure's own ``backward()`` when it calls it.

        Letting the closure run its backward keeps whatever it does after it (gradient clipping,
        for one) in effect, as with torch's L-BFGS.
        """
        for p in self.params:
            p.grad = None
        with torch.enable_grad(), GuardBackward(self.method):
            loss = closure()
            if all(p.grad is None for p in self.params):
                self.checked_loss(loss, needs_grad=True).backward()
            else:
                loss = self.checked_loss(loss, needs_grad=False)
        grad = self.flat([p.grad for p in self.params])
        value = float(loss.detach())
        decay = self._decay()
        if decay is not None:
            grad = grad + decay * self.get()
            value += float(self._l2())
        return value, grad

    def value_and_grad_with_graph(
        self, closure: Closure, gauss_newton: bool = False
    ) -> tuple[float, torch.Tensor]:
        """The objective and its gradient, keeping the graphs for ``hvp``/``hessian``.

        With ``gauss_newton``, ``hvp`` multiplies by the Gauss-Newton matrix ``J^T H_L J``
        instead of the Hessian when the closure's loss is one convex loss call (cross-entropy,
        MSE, ...) of the network output ``z``: then ``J v`` comes from double backward through
        ``z``, ``H_L`` from double backward through the loss. Otherwise it stays the Hessian.
        The parameters' ``.grad`` are set to the (detached) gradient, as ``backward()`` would.
        """
        mode = _KeepGraph()
        with torch.enable_grad(), mode:
            data_loss = closure()
            loss = self.checked_loss(data_loss, needs_grad=True) + self._l2()
            grads = torch.autograd.grad(loss, self.params, create_graph=True, allow_unused=True)
        self._graph_grads = [
            torch.zeros_like(p, requires_grad=True) if g is None else g
            for p, g in zip(self.params, grads, strict=True)
        ]
        self._gauss_newton = None
        if gauss_newton and len(mode.losses) == 1 and mode.losses[0][1] is data_loss:
            output = mode.losses[0][0]
            with torch.enable_grad():
                (output_grad,) = torch.autograd.grad(data_loss, output, create_graph=True)
                dummy = torch.zeros_like(output, requires_grad=True)
                transposed = torch.autograd.grad(
                    output, self.params, dummy, create_graph=True, allow_unused=True
                )
            self._gauss_newton = (output, output_grad, dummy, transposed)
        for p, g in zip(self.params, self._graph_grads, strict=True):
            p.grad = g.detach().clone()
        return float(loss.detach()), self.flat(grads).detach()

    @property
    def uses_gauss_newton(self) -> bool:
        """Whether ``hvp`` multiplies by the Gauss-Newton matrix (else by the Hessian)."""
        return self._gauss_newton is not None

    def _split(self, vector: torch.Tensor) -> list[torch.Tensor]:
        pieces = torch.split(vector, [p.numel() for p in self.params])
        return [v.view_as(p) for v, p in zip(pieces, self.params, strict=True)]

    def _gauss_newton_product(self, vector: torch.Tensor) -> torch.Tensor:
        output, output_grad, dummy, transposed = self._gauss_newton
        used = [
            (t, v) for t, v in zip(transposed, self._split(vector), strict=True) if t is not None
        ]
        with torch.enable_grad():
            (jv,) = torch.autograd.grad(
                [t for t, _ in used], dummy, [v for _, v in used], retain_graph=True
            )  # J v: the gradient of (J^T w) . v in w
            (hjv,) = torch.autograd.grad(output_grad, output, jv, retain_graph=True)
            products = torch.autograd.grad(
                output, self.params, hjv, retain_graph=True, allow_unused=True
            )
        product = self.flat(products)
        decay = self._decay()
        return product if decay is None else product + decay * vector

    def hvp(self, vector: torch.Tensor) -> torch.Tensor:
        """Curvature-vector product ``H v`` (or ``G v``) by double backward: never forms ``H``."""
        if self.uses_gauss_newton:
            return self._gauss_newton_product(vector)
        pieces = self._split(vector)
        with torch.enable_grad():
            products = torch.autograd.grad(
                self._graph_grads, self.params, pieces, retain_graph=True, allow_unused=True
            )
        return self.flat(products)

    def hessian(self) -> torch.Tensor:
        """The exact dense Hessian: all ``n`` Hessian-vector products at once, vmapped."""
        eye = torch.eye(self.numel, dtype=self.dtype, device=self.params[0].device)
        pieces = torch.split(eye, [p.numel() for p in self.params], dim=1)
        pieces = [v.reshape(self.numel, *p.shape) for v, p in zip(pieces, self.params, strict=True)]
        with torch.enable_grad():
            rows = torch.autograd.grad(
                self._graph_grads,
                self.params,
                pieces,
                retain_graph=True,
                allow_unused=True,
                is_grads_batched=True,
            )
        hessian = torch.cat(
            [
                torch.zeros(self.numel, p.numel(), dtype=self.dtype, device=eye.device)
                if r is None
                else r.reshape(self.numel, -1)
                for p, r in zip(self.params, rows, strict=True)
            ],
            dim=1,
        )
        return 0.5 * (hessian + hessian.T)

    def release(self) -> None:
        """Drop the gradient graph (it holds the forward pass's activations)."""
        self._graph_grads = None
        self._gauss_newton = None


def wolfe_search(
    objective: FlatObjective,
    closure: Closure,
    direction: torch.Tensor,
    value: float,
    slope: float,
    step: float,
    group: dict,
) -> LineSearchResult:
    """A strong-Wolfe search along ``direction`` (``c1``/``c2`` from ``group``), leaving the
    parameters at the step it accepts (where they were when it accepts none)."""
    theta = objective.get()

    def value_grad_at(t: float) -> tuple[float, torch.Tensor]:
        objective.set(theta + t * direction)
        return objective.value_and_grad(closure)

    result = strong_wolfe(
        value_grad_at, direction, value, slope, step, c1=group["c1"], c2=group["c2"]
    )
    objective.set(theta + result.step * direction)
    return result


def begin_step(
    optimizer: torch.optim.Optimizer, method: str, closure: Closure | None
) -> tuple[Closure, FlatObjective, dict, dict]:
    """The closure, the objective, the shared options and the state for one flat step.

    cnnlab's closure methods (newton, bfgs, cg, hessian_free, lbfgs) step one flat vector of
    all parameters with one line search, so per-group options other than ``weight_decay``
    (which enters the objective per group) have no meaning: every group must agree on them,
    checked at each step since groups can change between steps. Everything is read from
    ``param_groups`` here, at each step, and nothing is cached on the optimizer, so
    ``add_param_group``, ``load_state_dict``, schedulers, ``copy.deepcopy`` and pickling (which
    keep only the groups and the state) work as with torch's own optimizers. The state lives
    on the first parameter and restarts when the parameter vector changes length.
    """
    closure = require_closure(method, closure)
    first = optimizer.param_groups[0]
    for index, group in enumerate(optimizer.param_groups[1:], start=1):
        for key, value in first.items():
            if key not in ("params", "weight_decay") and group.get(key) != value:
                raise ConfigError(
                    f"{method} steps all parameters as one vector, so every parameter group "
                    f"needs the same {key}: group {index} has {group.get(key)!r}, group 0 "
                    f"{value!r} (groups may differ in weight_decay only)"
                )
    objective = FlatObjective(optimizer.param_groups, method)
    state = optimizer.state[objective.params[0]]
    if state.get("numel", objective.numel) != objective.numel:
        state.clear()  # the parameter vector changed: its history no longer applies
    state["numel"] = objective.numel
    return closure, objective, first, state


DEFAULT_MAX_MATRIX_BYTES = 2 * 1024**3


class FlatMethod(torch.optim.Optimizer):
    """Base of the closure methods that step one flat vector (newton, bfgs, cg, hessian_free).

    A subclass names itself in ``method``, says what it keeps, where it comes from and its rule
    as class keywords (``state``, ``source``, ``summary``; it is registered with them) and
    passes its ``__init__`` arguments on with ``hyperparameters(locals())``, so each
    hyperparameter and its default is written once, in the signature, which the registry reads.
    Unusable parameters, and with ``dense`` an ``n x n`` matrix over ``max_memory``, are refused
    when the optimizer is created and again at each step (groups may change); ``iterate`` is
    the method's own iteration.
    """

    method: str
    dense: bool = False

    def __init_subclass__(cls, *, state: str, source: str, summary: str, **kwargs):
        super().__init_subclass__(**kwargs)
        about = dict(order=2, state=state, source=source, summary=summary, needs_closure=True)
        register_optimizer(cls.method, **about)(cls)

    def __init__(self, params, defaults: dict):
        super().__init__(params, defaults)
        objective = FlatObjective(self.param_groups, self.method)
        if self.dense:
            check_objective_matrix_fits(self.method, objective, self.param_groups[0])

    @torch.no_grad()
    def step(self, closure=None):
        closure, objective, group, state = begin_step(self, self.method, closure)
        if self.dense:
            check_objective_matrix_fits(self.method, objective, group)
        value, grad = self.iterate(closure, objective, group, state)
        return torch.tensor(value, dtype=grad.dtype)

    def iterate(
        self, closure: Closure, objective: FlatObjective, group: dict, state: dict
    ) -> tuple[float, torch.Tensor]:
        """One iteration from the current parameters: the objective there and its gradient."""
        raise NotImplementedError


def hyperparameters(init_locals: dict) -> dict:
    """An optimizer ``__init__``'s arguments, from its ``locals()``, as torch's ``defaults``:
    every argument but ``self`` and ``params`` (and the ``__class__`` cell ``super()`` adds)."""
    return {k: v for k, v in init_locals.items() if k not in ("self", "params", "__class__")}


def format_bytes(count: float) -> str:
    """Bytes in binary units, as memory is sold and as the lectures round (4e12 B = 3.6 TiB)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if count < 1024 or unit == "PiB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1024
    raise AssertionError("unreachable")


def check_objective_matrix_fits(method: str, objective: FlatObjective, group: dict) -> None:
    """``check_dense_matrix_fits`` for an optimizer's ``n x n`` matrix over ``objective``."""
    itemsize = objective.params[0].element_size()
    check_dense_matrix_fits(method, objective.numel, itemsize, group["max_memory"], group["force"])


def check_dense_matrix_fits(
    method: str, numel: int, itemsize: int, max_bytes: float, force: bool
) -> None:
    """Refuse an ``n x n`` matrix larger than ``max_bytes`` unless forced.

    The lectures' example: a network of 1e6 parameters has a 1e6 x 1e6 Hessian, 4e12 bytes in
    float32 (3.6 TiB), which no machine holds; an optimizer should say so before trying.
    """
    needed = numel * numel * itemsize
    if needed > max_bytes and not force:
        raise ConfigError(
            f"{method} needs a dense {numel:,} x {numel:,} matrix of {itemsize}-byte floats: "
            f"{needed:,} bytes = {format_bytes(needed)}, over the {format_bytes(max_bytes)} "
            f"limit (max_memory); use lbfgs, cg or hessian_free, whose memory grows linearly "
            f"with the parameters, or force it (force=True in Python; --optimizer-arg force=true "
            f"with `cnnlab train`)"
        )
