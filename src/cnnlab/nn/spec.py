"""Sequential networks written as one string, so the lectures' exercises are one command.

A spec is a list of layers joined by ``-``; ``[...]xN`` repeats a group N times::

    [conv6k5-pool2]x2-conv120k5-fc84-fc10                       (LeNet-5 shape, 6 maps in C3)
    [conv64k3p1]x2-pool2-[conv128k3p1]x2-pool2-[conv256k3p1]x3-pool2-
        [conv512k3p1]x3-pool2-[conv512k3p1]x3-pool2-fc4096-fc4096-fc1000        (VGG-16)

The grammar (:data:`cnnlab.nn.spec_grammar.GRAMMAR`, also printed by
``cnnlab summary --help``) has conv (k, s, p, d, g options), max and average pooling, global
average pooling, fc, relu/sigmoid/tanh, bn and dropout layers.

Activations: a spec that names no activation gets a ReLU after every conv and every fc except
a final fc (its outputs are the class scores), placed after a ``bn`` that directly follows the
layer (conv-bn-relu). A spec that names any activation is taken literally: no ReLU is added.

The input is ``(C, H, W)``, 3×224×224 unless given; the returned ``nn.Sequential`` carries it
as ``default_input_size``. Layers are named by kind and count (``conv1``, ``pool1``,
``fc1``...), so summaries read like the lectures' tables.
"""

from __future__ import annotations

import math
import re
from collections import Counter, OrderedDict
from dataclasses import dataclass

from torch import nn

from cnnlab.errors import ConfigError, GeometryError, SpecError, closest_names
from cnnlab.geometry.arithmetic import conv_output_size
from cnnlab.geometry.units import MAX_TENSOR_VALUES, dims
from cnnlab.nn.spec_grammar import MAX_SPEC_LAYERS
from cnnlab.validate import POSITIVE_INT, Instance, Items, Number, check

_INPUT_SIZE = Items(POSITIVE_INT, length=3, optional=True, meaning="(C, H, W)")

DEFAULT_INPUT_SIZE = (3, 224, 224)
LARGEST_NUMBER = 2**31 - 1  # torch stores sizes as 64-bit ints; no real layer comes close
ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
LAYER_WORDS = ["conv", "pool", "maxpool", "avgpool", "gap", "fc", *ACTIVATIONS, "bn", "dropout"]

_TOKEN = re.compile(
    r"\s*(?:(?P<open>\[)|(?P<close>\](?:x(?P<times>\d+))?)|(?P<dash>-)|"
    r"(?P<word>[a-z][a-z0-9.]*))"
)
_CONV = re.compile(r"conv(?P<channels>\d+)(?P<options>(?:[ksdgp]\d+)*)")
_POOL = re.compile(r"(?P<kind>max|avg)?pool(?P<kernel>\d+)(?P<options>(?:[sp]\d+)*)")
_FC = re.compile(r"fc(?P<features>\d+)")
_DROPOUT = re.compile(r"dropout(?P<p>\d*\.?\d+)?")
_OPTION = re.compile(r"([a-z])(\d+)")
_SPEC_START = re.compile(
    r"\s*(\[|(conv|maxpool|avgpool|pool|fc)\d|(gap|bn|relu|sigmoid|tanh|dropout)(?![a-z]))"
)


@dataclass(frozen=True)
class SpecLayer:
    """One parsed layer word: its kind, its numbers, and where it stood in the spec."""

    kind: str
    args: dict
    token: str
    position: int


def _error(spec: str, position: int, problem: str) -> SpecError:
    """A one-line SpecError that marks the offending place with ``^`` inside the spec."""
    marked = f"{spec[:position]}^{spec[position:]}"
    marked = marked.encode("unicode_escape").decode("ascii")  # a newline stays on the line
    return SpecError(f"spec '{marked}', position {position + 1} (marked ^): {problem}")


def _tokens(spec: str) -> list[tuple[str, str, int]]:
    """Split the spec into (kind, text, position) tokens; anything unreadable is a SpecError."""
    tokens = []
    position = 0
    while position < len(spec):
        if spec[position:].strip() == "":
            break
        match = _TOKEN.match(spec, position)
        if match is None:
            start = len(spec) - len(spec[position:].lstrip())
            raise _error(spec, start, f"unexpected character '{spec[start]}'")
        start = match.start(match.lastgroup)
        if match.lastgroup == "close" and match.group("times") is None:
            raise _error(spec, start, "a ']' must be followed by a repeat count like 'x2'")
        kind = "close" if match.lastgroup == "times" else match.lastgroup
        tokens.append((kind, match.group(kind), start))
        position = match.end()
    return tokens


def _options(spec: str, layer: str, text: str, position: int, allowed: str) -> dict[str, int]:
    options: dict[str, int] = {}
    for match in _OPTION.finditer(text):
        letter, value = match.group(1), int(match.group(2))
        if letter not in allowed or letter in options:
            raise _error(spec, position, f"'{layer}' has a repeated or unknown option '{letter}'")
        options[letter] = value
    return options


def _layer(spec: str, word: str, position: int) -> SpecLayer:
    """Read one layer word (``conv64k3p1``, ``pool2``, ``fc10``, ...)."""
    layer = _read_layer(spec, word, position)
    if any(value > LARGEST_NUMBER for value in layer.args.values()):
        raise _error(spec, position, f"'{word}' has a number larger than {LARGEST_NUMBER:,}")
    return layer


def _read_layer(spec: str, word: str, position: int) -> SpecLayer:
    if match := _CONV.fullmatch(word):
        options = _options(spec, word, match.group("options"), position, "ksdgp")
        args = {"channels": int(match.group("channels")), **options}
        return SpecLayer("conv", args, word, position)
    if match := _POOL.fullmatch(word):
        options = _options(spec, word, match.group("options"), position, "sp")
        kind = "avgpool" if match.group("kind") == "avg" else "pool"
        return SpecLayer(kind, {"k": int(match.group("kernel")), **options}, word, position)
    if match := _FC.fullmatch(word):
        return SpecLayer("fc", {"features": int(match.group("features"))}, word, position)
    if match := _DROPOUT.fullmatch(word):
        p = float(match.group("p")) if match.group("p") else 0.5
        return SpecLayer("dropout", {"p": p}, word, position)
    if word in ACTIVATIONS or word in ("bn", "gap"):
        return SpecLayer(word, {}, word, position)
    stem = re.match(r"[a-z]+", word).group()
    close = closest_names(stem, LAYER_WORDS)
    hint = f" (did you mean {' or '.join(close)}?)" if close and stem not in LAYER_WORDS else ""
    raise _error(
        spec,
        position,
        f"cannot read layer '{word}'{hint}; layers are {', '.join(LAYER_WORDS)}, "
        "e.g. conv64k3p1, pool2, fc10",
    )


def looks_like_spec(text: str) -> bool:
    """Whether ``text`` is meant as a spec (starts with ``[`` or a layer word) not a model name."""
    return _SPEC_START.match(text.lower()) is not None


def parse_spec(spec: str) -> list[SpecLayer]:
    """Parse a spec into its flat list of layers, repetitions expanded."""
    text = spec.lower()
    tokens = _tokens(text)
    if not tokens:
        raise SpecError("the spec is empty; write layers joined by '-', e.g. conv6k5-pool2-fc10")
    return _sequence(text, tokens, 0, nested=False)[0]


def _sequence(
    spec: str, tokens: list[tuple[str, str, int]], index: int, nested: bool
) -> tuple[list[SpecLayer], int]:
    """Read ``item (- item)*`` from ``tokens[index]``; return the layers and the next index."""
    layers: list[SpecLayer] = []
    while True:
        if index >= len(tokens):
            raise _error(spec, len(spec), "the spec ends where a layer was expected")
        kind, text, position = tokens[index]
        if kind == "word":
            layers.append(_layer(spec, text, position))
            if len(layers) > MAX_SPEC_LAYERS:
                raise _error(
                    spec, position, f"a spec may have at most {MAX_SPEC_LAYERS} layers in all"
                )
            index += 1
        elif kind == "open":
            group, index = _sequence(spec, tokens, index + 1, nested=True)
            if index >= len(tokens) or tokens[index][0] != "close":
                raise _error(spec, position, "this '[' is never closed with ']xN'")
            times = int(tokens[index][1][2:])
            if times < 1:
                raise _error(spec, tokens[index][2], "a group must repeat at least once (x1)")
            if len(layers) + len(group) * times > MAX_SPEC_LAYERS:  # before building the list
                raise _error(
                    spec,
                    tokens[index][2],
                    f"this repeat makes {len(layers) + len(group) * times} layers; a spec may "
                    f"expand to at most {MAX_SPEC_LAYERS} (ResNet-1202 has about 1200)",
                )
            layers.extend(group * times)
            index += 1
        else:
            raise _error(spec, position, f"expected a layer or '[' but found '{text}'")
        if index < len(tokens) and tokens[index][0] == "dash":
            index += 1
            continue
        if index < len(tokens) and tokens[index][0] == "close" and not nested:
            raise _error(spec, tokens[index][2], "this ']' has no matching '['")
        if index < len(tokens) and tokens[index][0] != "close":
            raise _error(spec, tokens[index][2], "layers must be joined by '-'")
        return layers, index


def _with_default_activations(layers: list[SpecLayer]) -> list[SpecLayer]:
    """Insert the implicit ReLUs (see the module docstring) unless the spec names activations."""
    if any(layer.kind in ACTIVATIONS for layer in layers):
        return layers
    weighted = [i for i, layer in enumerate(layers) if layer.kind in ("conv", "fc")]
    final_fc = weighted[-1] if weighted and layers[weighted[-1]].kind == "fc" else None
    result: list[SpecLayer] = []
    pending: SpecLayer | None = None
    for i, layer in enumerate(layers):
        if pending is not None and layer.kind != "bn":
            result.append(pending)
            pending = None
        result.append(layer)
        if layer.kind in ("conv", "fc") and i != final_fc:
            pending = SpecLayer("relu", {}, "relu", layer.position)
    if pending is not None:
        result.append(pending)
    return result


def build_spec(
    spec: str,
    in_chans: int | None = None,
    input_size: tuple[int, int, int] | None = None,
) -> nn.Sequential:
    """Build the ``nn.Sequential`` a spec string describes (grammar in the module docstring).

    Args:
        spec: the spec, e.g. ``"[conv6k5-pool2]x2-conv120k5-fc84-fc10"``.
        in_chans: input channels when ``input_size`` is not given (default 3).
        input_size: ``(C, H, W)`` the network is built for; fc input sizes are computed from it.
            Default: ``(in_chans, 224, 224)``.

    Returns:
        The network, with ``default_input_size`` set to the input size it was built for.

    Raises:
        SpecError: the spec is malformed (the message marks the offending place).
        GeometryError: a layer's output would be empty for this input size.
    """
    check("build_spec", "spec", spec, Instance((str,), "a spec string"))
    check("build_spec", "in_chans", in_chans, Number(low=1, integer=True, optional=True))
    check("build_spec", "input_size", input_size, _INPUT_SIZE)
    if input_size is None:
        input_size = (in_chans or DEFAULT_INPUT_SIZE[0], *DEFAULT_INPUT_SIZE[1:])
    elif in_chans is not None and in_chans != input_size[0]:
        raise ConfigError(
            f"in_chans={in_chans} contradicts input_size={tuple(input_size)}: give one of them"
        )
    layers = _with_default_activations(parse_spec(spec))
    shape = tuple(int(s) for s in input_size)
    counts: Counter[str] = Counter()
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    for layer in layers:
        if layer.kind == "fc" and len(shape) > 1:
            modules["flatten"] = nn.Flatten()
            shape = (math.prod(shape),)
        module, shape = _module(spec, layer, shape)
        counts[layer.kind] += 1
        modules[f"{layer.kind}{counts[layer.kind]}"] = module
    model = nn.Sequential(modules)
    model.default_input_size = tuple(int(s) for s in input_size)
    return model


def _module(spec: str, layer: SpecLayer, shape: tuple[int, ...]) -> tuple[nn.Module, tuple]:
    """The module for one layer and the shape it outputs, given the shape it receives."""
    args = layer.args
    spatial = len(shape) == 3
    if layer.kind in ("conv", "pool", "avgpool", "gap") and not spatial:
        raise _error(
            spec, layer.position, f"'{layer.token}' needs feature maps, but comes after fc"
        )
    if layer.kind == "conv":
        return _conv(spec, layer, shape)
    if layer.kind in ("pool", "avgpool"):
        kernel, stride, padding = args["k"], args.get("s", args["k"]), args.get("p", 0)
        if kernel < 1 or stride < 1 or 2 * padding > kernel:
            raise _error(
                spec, layer.position, f"'{layer.token}' needs k, s >= 1 and padding <= k/2"
            )
        pool = nn.MaxPool2d if layer.kind == "pool" else nn.AvgPool2d
        sizes = [conv_output_size(s, kernel, stride, padding) for s in shape[1:]]
        _check_not_empty(spec, layer, shape, (shape[0], *sizes))
        return pool(kernel, stride, padding), (shape[0], *sizes)
    if layer.kind == "gap":
        return nn.AdaptiveAvgPool2d(1), (shape[0], 1, 1)
    if layer.kind == "fc":
        if args["features"] < 1:
            raise _error(spec, layer.position, f"'{layer.token}' needs at least one output")
        _check_weights(spec, layer, shape, shape[0] * args["features"])
        return nn.Linear(shape[0], args["features"]), (args["features"],)
    if layer.kind == "bn":
        return (nn.BatchNorm2d(shape[0]) if spatial else nn.BatchNorm1d(shape[0])), shape
    if layer.kind == "dropout":
        if not 0 <= args["p"] <= 1:
            raise _error(spec, layer.position, f"'{layer.token}': p must be between 0 and 1")
        return nn.Dropout(args["p"]), shape
    return ACTIVATIONS[layer.kind](), shape


def _conv(spec: str, layer: SpecLayer, shape: tuple[int, ...]) -> tuple[nn.Module, tuple]:
    args = layer.args
    channels, groups = args["channels"], args.get("g", 1)
    kernel, stride = args.get("k", 3), args.get("s", 1)
    padding, dilation = args.get("p", 0), args.get("d", 1)
    if min(channels, kernel, stride, dilation, groups) < 1:
        raise _error(spec, layer.position, f"'{layer.token}': filters, k, s, d and g must be >= 1")
    if shape[0] % groups or channels % groups:
        raise _error(
            spec,
            layer.position,
            f"'{layer.token}': {groups} groups must divide both its {shape[0]} input and "
            f"{channels} output channels",
        )
    sizes = [conv_output_size(s, kernel, stride, padding, dilation) for s in shape[1:]]
    _check_not_empty(spec, layer, shape, (channels, *sizes))
    _check_weights(spec, layer, shape, channels * (shape[0] // groups) * kernel * kernel)
    conv = nn.Conv2d(shape[0], channels, kernel, stride, padding, dilation, groups)
    return conv, (channels, *sizes)


def _check_weights(spec: str, layer: SpecLayer, shape: tuple, weights: int) -> None:
    """Refuse a layer whose weight tensor is too large for torch to describe at all."""
    if weights > MAX_TENSOR_VALUES:
        raise _error(
            spec,
            layer.position,
            f"'{layer.token}' would have {weights:.3g} weights on its {dims(shape)} input, more "
            "than one tensor can hold (at most 2**60): use a smaller input size, or pool first",
        )


def _check_not_empty(spec: str, layer: SpecLayer, shape: tuple, out: tuple) -> None:
    if min(out) < 1:
        raise GeometryError(
            f"'{layer.token}' (position {layer.position + 1} of the spec) would output "
            f"{dims(out)} from {dims(shape)}: the input is too small for this spec"
        )
