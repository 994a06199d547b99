"""One forward pass on the meta device, with a record of every module call.

This is where ``summary`` gets its numbers: hooks on every module record each call's output
shape, the MACs of convolutions and linear layers, and the receptive field along chains of
layers. Matrix products that run outside such layers (attention inside
``nn.MultiheadAttention``, ``F.linear`` on a module's weights, ``x @ w`` in a ``forward``) are
counted too, with the formulas of torch's FLOP counter, for the module whose code ran them.
A layer whose output would be empty stops the pass at once, so searching for the smallest
input that fits a network costs little.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.modules import pooling
from torch.nn.modules.conv import _ConvNd, _ConvTransposeNd
from torch.nn.modules.module import (
    register_module_forward_hook,
    register_module_forward_pre_hook,
)
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from cnnlab.errors import GeometryError
from cnnlab.geometry.arithmetic import (
    AxisWindow,
    ReceptiveField,
    effective_kernel,
    fractional_output_size,
)
from cnnlab.geometry.fit import smallest_square_input, square_input, too_small_error
from cnnlab.geometry.units import MAX_TENSOR_VALUES, dims
from cnnlab.models.features import call_name

# pools with no fixed stride: adaptive ones fit their windows to the output size, fractional
# ones draw them at random; neither has a window that sizing could slide or warn about
_UNSTRIDED_POOLS = (
    pooling._AdaptiveAvgPoolNd,
    pooling._AdaptiveMaxPoolNd,
    nn.FractionalMaxPool2d,
    nn.FractionalMaxPool3d,
)
_POOLS = (pooling._MaxPoolNd, pooling._AvgPoolNd, pooling._LPPoolNd, *_UNSTRIDED_POOLS)
# leaves with a kernel_size but no window over spatial axes: nn.Fold's input is (N, C·∏k, L)
_NOT_SLIDING = (*_UNSTRIDED_POOLS, nn.Fold)
# windows that spread each input pixel over the output (a transposed conv, max-unpooling):
# nothing is dropped, and the receptive field is not a pool's or a conv's
_UPSAMPLING = (_ConvTransposeNd, pooling._MaxUnpoolNd)
# Leaves that keep their input's shape and change no position: the receptive field passes
# through them unchanged, and tracing runs a shape-only stand-in for them (see _shape_only).
_POINTWISE = frozenset(
    {
        nn.ReLU,
        nn.ReLU6,
        nn.LeakyReLU,
        nn.PReLU,
        nn.ELU,
        nn.SELU,
        nn.GELU,
        nn.SiLU,
        nn.Mish,
        nn.Hardswish,
        nn.Hardsigmoid,
        nn.Sigmoid,
        nn.Tanh,
        nn.Identity,
        nn.BatchNorm1d,
        nn.BatchNorm2d,
        nn.BatchNorm3d,
        nn.InstanceNorm1d,
        nn.InstanceNorm2d,
        nn.InstanceNorm3d,
        nn.GroupNorm,
        nn.LocalResponseNorm,
        nn.Dropout,
        nn.Dropout1d,
        nn.Dropout2d,
        nn.Dropout3d,
        nn.AlphaDropout,
    }
)


def _shape_only(module: nn.Module) -> Callable[..., torch.Tensor]:
    """A forward for a pointwise torch layer that only produces the right (meta) output.

    On the meta device torch runs elementwise ops and batch norm through Python
    decompositions, about a millisecond each; these layers' outputs have their input's shape by
    definition, so a stand-in makes tracing a deep network several times faster.
    """
    in_place = bool(getattr(module, "inplace", False)) or isinstance(module, nn.Identity)
    checked = isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm))
    channels = getattr(module, "num_features", None) or getattr(module, "num_channels", None)

    def forward(x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if checked and (x.dim() < 2 or x.shape[1] != channels):  # what torch would refuse
            raise RuntimeError(
                f"{type(module).__name__} expects {channels} channels, got input {tuple(x.shape)}"
            )
        return x if in_place else torch.empty_like(x)

    return forward


@dataclass
class Window:
    """A leaf's sliding window along each spatial axis (conv, pool, or a custom leaf alike)."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    ceil_mode: bool = False
    transposed: bool = False
    same: bool = False  # padding="same": the output keeps the input size

    def axes(self, sizes: tuple[int, ...]) -> list[tuple[int, AxisWindow]]:
        """Per axis: (input size, the window along it)."""
        windows = zip(self.kernel, self.stride, self.padding, self.dilation, strict=True)
        return [
            (size, AxisWindow(*window, ceil_mode=self.ceil_mode))
            for size, window in zip(sizes, windows, strict=True)
        ]


@dataclass
class Call:
    """One call of one module during the traced forward pass, in the order calls began."""

    name: str
    module: nn.Module
    depth: int
    parent: int | None
    leaf: bool
    output_shape: tuple[int, ...] = ()
    macs: int = 0
    elements: int = 0
    window: Window | None = None
    input_shape: tuple[int, ...] = ()
    field_in: tuple[ReceptiveField, ...] | None = None
    field_out: tuple[ReceptiveField, ...] | None = None
    op_macs: int = 0  # of the matrix products its own code ran (not its children's)
    ran_children: bool = False


class _ForwardFailed(Exception):
    """Any other failure of the forward pass, with the layer that was running."""

    def __init__(self, layer: str, error: Exception):
        super().__init__(layer)
        self.layer, self.error = layer, error


class _TooSmall(Exception):
    """Raised inside the forward pass as soon as a layer's output would be empty."""

    def __init__(self, call: Call, in_shape: tuple[int, ...], out_shape: tuple[int, ...]):
        super().__init__(call.name)
        self.call, self.in_shape, self.out_shape = call, in_shape, out_shape


def _as_tuple(value, axes: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * axes


def _window_of(module: nn.Module, axes: int) -> Window | None:
    """The sliding window of a leaf: convs, pools, and any leaf with a ``kernel_size``.

    A custom leaf that has ``kernel_size`` (like LeNet-5's trainable subsampling) is sized as a
    pooling window; its ``stride`` defaults to the kernel size, as in torch's pools.
    """
    kernel = getattr(module, "kernel_size", None)
    if kernel is None or isinstance(module, _NOT_SLIDING) or axes < 1:
        return None
    kernel = _as_tuple(kernel, axes)
    if len(kernel) != axes:
        return None
    dilation = _as_tuple(getattr(module, "dilation", 1), axes)
    padding = getattr(module, "padding", 0)
    if padding == "valid":
        padding = 0
    elif padding == "same":  # torch pads d·(k − 1) in all, the smaller half first
        padding = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation, strict=True))
    return Window(
        kernel=kernel,
        stride=_as_tuple(getattr(module, "stride", None) or kernel, axes),
        padding=_as_tuple(padding, axes),
        dilation=dilation,
        ceil_mode=bool(getattr(module, "ceil_mode", False)),
        transposed=isinstance(module, _UPSAMPLING),
        same=getattr(module, "padding", 0) == "same",
    )


def _window_output(window: Window, sizes: tuple[int, ...]) -> tuple[int, ...]:
    if window.same:
        return sizes
    return tuple(axis.output_size(size) for size, axis in window.axes(sizes))


def _first_tensor(value) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for item in value:
            found = _first_tensor(item)
            if found is not None:
                return found
    if isinstance(value, dict):
        return _first_tensor(list(value.values()))
    return None


def _macs(
    module: nn.Module, window: Window | None, x: torch.Tensor, out: torch.Tensor
) -> int | None:
    """Multiply-accumulates of one leaf call by the lectures' formulas, bias not counted, or
    ``None`` for a leaf they do not cover (its matrix products are then counted as torch's FLOP
    counter counts them).

    A custom leaf with a sliding window whose ``weight`` ends in the kernel's shape (LeNet-5's
    C3 with its connection table) is a convolution too: one MAC per weight per output position.
    """
    if isinstance(module, _ConvTransposeNd):
        kernel_area = math.prod(module.kernel_size)
        return x.numel() * module.out_channels // module.groups * kernel_area
    if isinstance(module, _ConvNd):
        kernel_area = math.prod(module.kernel_size)
        return out.numel() * module.in_channels // module.groups * kernel_area
    if isinstance(module, nn.Linear):
        return x.numel() * module.out_features
    weight = getattr(module, "weight", None)
    if window is not None and isinstance(weight, torch.Tensor) and out.dim() > 2:
        if tuple(weight.shape[-len(window.kernel) :]) == window.kernel:
            return out.numel() // out.shape[1] * weight.numel()
    return None


class _MatrixProducts(TorchDispatchMode):
    """Adds the MACs (half the FLOPs, by torch's FLOP counter's formulas) of every matrix product
    and convolution to the innermost module call running when it runs."""

    def __init__(self, tracer: Tracer):
        super().__init__()
        self.tracer = tracer

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None and self.tracer.stack:
            call = self.tracer.calls[self.tracer.stack[-1]]
            call.op_macs += formula(*args, **kwargs, out_val=out) // 2
        return out


_SOFTMAXES = (nn.Softmax, nn.LogSoftmax, nn.Softmin)


def _keeps_positions(call: Call, out: torch.Tensor) -> bool:
    """Whether a window-less leaf maps each position to itself, so the receptive field passes.

    torch's activations, norms and dropouts do; a softmax does over the batch or channels, not
    over a spatial axis; a custom leaf does when it has no parameters or buffers (a blur kernel
    in a buffer mixes positions) and keeps its input's shape (LeNet-5's scaled tanh).
    """
    module = call.module
    if type(module) in _POINTWISE:
        return True
    if isinstance(module, _SOFTMAXES):
        dim = 1 if module.dim is None else module.dim  # torch's implicit dim for maps is 1
        return dim % out.dim() < 2
    no_tensors = next(module.parameters(), None) is None and next(module.buffers(), None) is None
    return call.window is None and no_tensors and tuple(out.shape[1:]) == call.input_shape


class Tracer:
    """Hooks that record every module call of one forward pass, with receptive fields."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.calls: list[Call] = []
        self.stack: list[int] = []
        self.warnings: dict[str, str] = {}
        # id(tensor) -> (tensor, version, field): a field is valid only while the tensor has not
        # been changed in place by something that is not a traced leaf (e.g. a residual add).
        self.fields: dict[int, tuple[torch.Tensor, int, tuple[ReceptiveField, ...]]] = {}
        self.names = {module: name for name, module in model.named_modules()}
        self.call_counts: dict[nn.Module, int] = {}  # a module called twice gets name:2

    def field_of(self, tensor: torch.Tensor | None) -> tuple[ReceptiveField, ...] | None:
        if tensor is None or id(tensor) not in self.fields:
            return None
        kept, version, receptive = self.fields[id(tensor)]
        return receptive if kept is tensor and version == tensor._version else None

    def remember(self, tensor: torch.Tensor, receptive: tuple[ReceptiveField, ...]) -> None:
        self.fields[id(tensor)] = (tensor, tensor._version, receptive)

    def pre_hook(self, module: nn.Module, args) -> None:
        if module not in self.names:
            return
        self.call_counts[module] = self.call_counts.get(module, 0) + 1
        call = Call(
            name=call_name(self.names[module] or type(module).__name__, self.call_counts[module]),
            module=module,
            depth=len(self.stack),
            parent=self.stack[-1] if self.stack else None,
            leaf=next(module.children(), None) is None,
        )
        if self.stack:
            self.calls[self.stack[-1]].ran_children = True
        self.stack.append(len(self.calls))
        self.calls.append(call)
        x = _first_tensor(args)  # an input passed by keyword is seen after the call (hook)
        if call.leaf and x is not None:
            self._take_input(call, x)

    def _take_input(self, call: Call, x: torch.Tensor) -> None:
        """A leaf's input: its shape and field, its window, and whether the window fits."""
        call.input_shape = tuple(x.shape[1:])
        call.field_in = self.field_of(x)
        call.window = _window_of(call.module, x.dim() - 2)
        if call.window is None or call.window.transposed:
            return
        sizes = tuple(x.shape[2:])
        out = _window_output(call.window, sizes)
        if min(out) < 1:
            channels = getattr(call.module, "out_channels", x.shape[1])
            raise _TooSmall(call, tuple(x.shape[1:]), (channels, *out))
        self._check_tiling(call, sizes)

    def _check_tiling(self, call: Call, sizes: tuple[int, ...]) -> None:
        window = call.window
        if window.same:
            return
        dropped = [axis.dropped_pixels(size) for size, axis in window.axes(sizes)]
        if any(dropped):
            axis = next(i for i, n in enumerate(dropped) if n)
            exact = fractional_output_size(
                sizes[axis],
                window.kernel[axis],
                window.stride[axis],
                window.padding[axis],
                window.dilation[axis],
            )
            self.warnings[call.name] = (
                f"layer '{call.name}' ({type(call.module).__name__} {dims(window.kernel)}, "
                f"stride {dims(window.stride, square=True)}, padding "
                f"{dims(window.padding, square=True)}) drops the last {_per_axis(dropped)} of "
                f"its {dims(sizes)} input: ({sizes[axis]} − "
                f"{effective_kernel(window.kernel[axis], window.dilation[axis])} + "
                f"2·{window.padding[axis]})/{window.stride[axis]} + 1 = "
                f"{exact:.2f} is not a whole number; change the padding, stride or input size"
            )

    def hook(self, module: nn.Module, args, kwargs, output) -> None:
        if module not in self.names:
            return
        call = self.calls[self.stack.pop()]
        # a module whose children never ran (nn.MultiheadAttention calls its out_proj's weights
        # directly) is a leaf of this pass: its row holds its parameters and its own MACs
        call.leaf = call.leaf or not call.ran_children
        call.macs = call.op_macs
        out = _first_tensor(output)
        if out is None:
            return
        call.output_shape = tuple(out.shape[1:])
        call.elements = out.numel()
        if not call.leaf:
            call.field_out = self.field_of(out)
            return
        x = _first_tensor((args, kwargs))
        if x is None:
            return
        if not call.input_shape:
            self._take_input(call, x)
        formula = _macs(module, call.window, x, out)
        call.macs = call.op_macs if formula is None else formula
        call.field_out = self._field_after(call, out)
        if call.field_out is not None:
            self.remember(out, call.field_out)

    def _field_after(self, call: Call, out: torch.Tensor) -> tuple[ReceptiveField, ...] | None:
        if call.field_in is None or out.dim() - 2 != len(call.field_in):
            return None
        window = call.window
        if window is not None and not window.transposed:
            return tuple(
                f.then(k, s, d)
                for f, k, s, d in zip(
                    call.field_in, window.kernel, window.stride, window.dilation, strict=True
                )
            )
        if _keeps_positions(call, out):
            return call.field_in
        return None

    def run(self, x: torch.Tensor, params_and_buffers: dict[str, torch.Tensor] | None) -> None:
        self.remember(x, tuple(ReceptiveField() for _ in x.shape[2:]))
        # Two global hooks rather than two per module: registering a hook costs more than
        # tracing a layer on meta. They fire for this model's modules only while it runs.
        handles = [
            register_module_forward_pre_hook(self.pre_hook),
            register_module_forward_hook(self.hook, with_kwargs=True),
        ]
        stood_in = [m for m in self.names if type(m) in _POINTWISE and "forward" not in vars(m)]
        for module in stood_in:
            module.forward = _shape_only(module)
        try:
            with torch.no_grad(), _MatrixProducts(self):
                if params_and_buffers is None:
                    self.model(x)
                else:
                    torch.func.functional_call(self.model, params_and_buffers, (x,))
        except _TooSmall:
            raise
        except Exception as error:
            layer = self.calls[self.stack[-1]].name if self.stack else ""
            raise _ForwardFailed(layer, error) from error
        finally:
            for handle in handles:
                handle.remove()
            for module in stood_in:
                del module.forward


def _trace(model: nn.Module, input_size: tuple[int, ...], batch_size: int) -> Tracer:
    """Run ``model`` once on a meta input of ``(batch_size, *input_size)`` in eval mode."""
    tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    on_meta = all(t.is_meta for t in tensors.values())
    substitutes = None if on_meta else {k: t.to("meta") for k, t in tensors.items()}
    modes = {module: module.training for module in model.modules()}
    model.eval()
    tracer = Tracer(model)
    try:
        tracer.run(torch.empty((batch_size, *input_size), device="meta"), substitutes)
    finally:
        for module, training in modes.items():
            module.training = training
    return tracer


def trace_or_explain(
    model: nn.Module, label: str, input_size: tuple[int, ...], batch_size: int
) -> Tracer:
    """Trace ``model``; a failure becomes a CnnlabError that says which layer and what to do.

    A too-small input is a GeometryError naming the first layer whose output would be empty and
    the smallest input that works, found by tracing square inputs on the meta device.
    """
    values = math.prod((batch_size, *input_size))
    if values > MAX_TENSOR_VALUES:  # torch's size arithmetic would overflow int64
        raise GeometryError(
            f"{label}: a batch of {batch_size} × {dims(input_size)} is {values:.3g} values, more "
            f"than one tensor can hold (at most 2**60); use a smaller --batch-size or --input"
        )
    try:
        return _trace(model, input_size, batch_size)
    except _TooSmall as too_small:
        call = too_small.call
        problem = (
            f"layer '{call.name}' ({type(call.module).__name__} {dims(call.window.kernel)}, "
            f"stride {dims(call.window.stride, square=True)}) would output "
            f"{dims(too_small.out_shape)} from {dims(too_small.in_shape)}"
        )

        def fits(side: int) -> bool:
            try:
                _trace(model, square_input(input_size, side), 1)
            except _TooSmall:
                return False
            except _ForwardFailed:  # failing for another reason is not being too small
                return True
            return True

        smallest = smallest_square_input(fits, max(input_size[1:]))
        raise too_small_error(label, input_size, problem, smallest) from None
    except _ForwardFailed as failed:
        message = str(failed.error).strip().splitlines()
        default = getattr(model, "default_input_size", None)
        hint = f" (its default input is {dims(default)})" if default else ""
        raise GeometryError(
            f"{label} cannot run on input {dims(input_size)}: layer '{failed.layer}' raised "
            f"{type(failed.error).__name__}: {message[0] if message else ''}; check the input "
            f"size{hint}"
        ) from failed.error


def _per_axis(counts: list[int]) -> str:
    if len(set(counts)) == 1:
        return f"{counts[0]} pixel(s) along every axis"
    return f"{dims(tuple(counts))} pixel(s) (per axis)"


def counted_by_default(call: Call) -> bool:
    """The lecture's convention: outputs of conv, pool and fully connected layers."""
    return call.window is not None or isinstance(call.module, (_ConvNd, nn.Linear, *_POOLS))
