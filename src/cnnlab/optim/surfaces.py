"""Two-dimensional test functions for the optimizer lab, each showing one lesson of the lectures.

Each is a torch function of a point ``(x, y)`` (autograd gives gradients and Hessians), with its
known minima, a plotting window, a start that makes the lesson visible, and learning rates per
optimizer tuned so the default race is instructive rather than a pile of divergences.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from cnnlab.errors import unknown_name


@dataclass(frozen=True)
class TestFunction:
    """A 2-D objective and what the lab needs to race optimizers on it.

    ``lrs`` maps optimizer names to learning rates (``"*"``: any other first-order optimizer);
    second-order optimizers take their line search's step 1 unless listed. ``gradient`` is the
    closed form at one point in Python floats: a first-order run steps on it, as autograd's
    backward would give it but some thirty times cheaper on two parameters (tests check the
    two agree); the function itself stays the truth for values, Hessians and the rest.
    """

    __test__ = False  # not a pytest test class despite the name

    name: str
    function: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    minima: tuple[tuple[float, float], ...]
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    start: tuple[float, float]
    lesson: str
    gradient: Callable[[float, float], tuple[float, float]]
    steps: int = 100
    lrs: dict[str, float] = field(default_factory=dict)
    optimizers: tuple[str, ...] = (
        "sgd",
        "momentum",
        "adagrad",
        "rmsprop",
        "adam",
        "newton",
        "bfgs",
    )
    log_contours: bool = False
    clip: float | None = None
    tolerance: float = 1e-3

    def __call__(self, point: torch.Tensor) -> torch.Tensor:
        """The value at ``point = (x, y)`` (any leading batch dimensions)."""
        return self.function(point[..., 0], point[..., 1])

    @property
    def minimum_value(self) -> float:
        return float(self(torch.tensor(self.minima[0], dtype=torch.float64)))

    def lr(self, optimizer: str) -> float | None:
        """The tuned learning rate for ``optimizer`` here, or ``None`` for its registry default."""
        return self.lrs.get(optimizer, self.lrs.get("*"))

    def distance_to_minimum(self, point: torch.Tensor) -> torch.Tensor:
        """Distance from ``point`` (shape ``(..., 2)``) to the nearest known minimum."""
        minima = torch.tensor(self.minima, dtype=point.dtype)
        return torch.cdist(point.reshape(-1, 2), minima).min(dim=1).values.reshape(point.shape[:-1])


_RAVINE_ANGLE = math.radians(30)


def ravine(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A tilted, narrow valley: curvature 0.1 along it, 10 across it (condition number 100)."""
    along = math.cos(_RAVINE_ANGLE) * x + math.sin(_RAVINE_ANGLE) * y
    across = -math.sin(_RAVINE_ANGLE) * x + math.cos(_RAVINE_ANGLE) * y
    return 0.05 * along**2 + 5.0 * across**2


def ravine_gradient(x: float, y: float) -> tuple[float, float]:
    cos, sin = math.cos(_RAVINE_ANGLE), math.sin(_RAVINE_ANGLE)
    along, across = 0.1 * (cos * x + sin * y), 10.0 * (-sin * x + cos * y)
    return cos * along - sin * across, sin * along + cos * across


def rosenbrock(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Rosenbrock's banana valley ``(1 - x)^2 + 100 (y - x^2)^2``, minimum 0 at (1, 1)."""
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def rosenbrock_gradient(x: float, y: float) -> tuple[float, float]:
    valley = 200 * (y - x * x)
    return -2 * (1 - x) - 2 * x * valley, valley


def beale(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Beale's function, minimum 0 at (3, 0.5), flat plateaus and steep walls."""
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def beale_gradient(x: float, y: float) -> tuple[float, float]:
    y2 = y * y
    a, b, c = 2 * (1.5 - x + x * y), 2 * (2.25 - x + x * y2), 2 * (2.625 - x + x * y2 * y)
    return a * (y - 1) + b * (y2 - 1) + c * (y2 * y - 1), x * (a + 2 * y * b + 3 * y2 * c)


def himmelblau(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Himmelblau's function, four minima of value 0: where you start decides where you end."""
    return (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2


def himmelblau_gradient(x: float, y: float) -> tuple[float, float]:
    a, b = 2 * (x * x + y - 11), 2 * (x + y * y - 7)
    return 2 * x * a + b, a + 2 * y * b


def saddle(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``x^2 + y^4/4 - y^2/2``: a saddle at the origin between minima at (0, +-1)."""
    return x**2 + 0.25 * y**4 - 0.5 * y**2


def saddle_gradient(x: float, y: float) -> tuple[float, float]:
    return 2 * x, y * y * y - y


def rastrigin(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Rastrigin's egg crate: a bowl covered in local minima, global minimum 0 at (0, 0)."""
    return 20 + x**2 - 10 * torch.cos(2 * math.pi * x) + y**2 - 10 * torch.cos(2 * math.pi * y)


def rastrigin_gradient(x: float, y: float) -> tuple[float, float]:
    return (
        2 * x + 20 * math.pi * math.sin(2 * math.pi * x),
        2 * y + 20 * math.pi * math.sin(2 * math.pi * y),
    )


def cliff(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A gentle bowl around (2, 0) below a 50-high cliff at ``x = 0`` (slope up to 250).

    Gradient descent walks to the edge, where the gradient is so large that one step throws the
    parameters far away: the lectures' exploding gradient, tamed by clipping its norm.
    """
    return 50 * torch.sigmoid(-20 * x) + 0.125 * ((x - 2) ** 2 + y**2)


def cliff_gradient(x: float, y: float) -> tuple[float, float]:
    z = -20 * x  # sigmoid(z) written so that exp never overflows
    sigmoid = 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))
    return -1000 * sigmoid * (1 - sigmoid) + 0.25 * (x - 2), 0.25 * y


def _lrs(sgd: float, momentum: float, adagrad: float, rmsprop: float, adam: float) -> dict:
    """Tuned rates per family: every heavy-ball variant takes momentum's, adamw takes adam's."""
    heavy_ball = dict.fromkeys(("momentum", "polyak", "nesterov", "alexnet"), momentum)
    return {
        "sgd": sgd,
        **heavy_ball,
        "adagrad": adagrad,
        "rmsprop": rmsprop,
        "adam": adam,
        "adamw": adam,
    }


_HIMMELBLAU_MINIMA = (
    (3.0, 2.0),
    (-2.805118086952745, 3.131312518250573),
    (-3.779310253377747, -3.283185991286170),
    (3.584428340330492, -1.848126526964404),
)

FUNCTIONS: dict[str, TestFunction] = {
    f.name: f
    for f in (
        TestFunction(
            "ravine",
            ravine,
            ((0.0, 0.0),),
            (-6.5, 2.0),
            (-5.0, 3.0),
            (-5.0, 0.5),
            "a tilted high-curvature ravine: SGD zigzags, momentum averages the zigzag away",
            gradient=ravine_gradient,
            steps=150,
            lrs=_lrs(sgd=0.19, momentum=0.03, adagrad=1.0, rmsprop=0.05, adam=0.2),
            log_contours=True,
            tolerance=1e-2,
        ),
        TestFunction(
            "rosenbrock",
            rosenbrock,
            ((1.0, 1.0),),
            (-2.0, 2.0),
            (-1.0, 3.0),
            (-1.2, 1.0),
            "a curved valley: first-order methods crawl along it, second-order ones follow it",
            gradient=rosenbrock_gradient,
            steps=600,
            lrs=_lrs(sgd=1e-3, momentum=1e-3, adagrad=0.5, rmsprop=0.01, adam=0.05),
            log_contours=True,
        ),
        TestFunction(
            "beale",
            beale,
            ((3.0, 0.5),),
            (-4.5, 4.5),
            (-4.5, 4.5),
            (1.0, 1.4),
            "plateaus and walls: adaptive step sizes cross the plateau",
            gradient=beale_gradient,
            steps=500,
            lrs=_lrs(sgd=1e-3, momentum=1e-4, adagrad=0.5, rmsprop=0.01, adam=0.05),
            log_contours=True,
        ),
        TestFunction(
            "himmelblau",
            himmelblau,
            _HIMMELBLAU_MINIMA,
            (-5.0, 5.0),
            (-5.0, 5.0),
            (0.0, -0.9),
            "four minima: the optimizer, not only the start, decides which one you reach",
            gradient=himmelblau_gradient,
            steps=300,
            lrs=_lrs(sgd=0.01, momentum=2e-3, adagrad=1.0, rmsprop=0.05, adam=0.1),
            log_contours=True,
        ),
        TestFunction(
            "saddle",
            saddle,
            ((0.0, 1.0), (0.0, -1.0)),
            (-2.0, 2.0),
            (-1.6, 1.6),
            (-1.8, 1e-3),
            "a saddle point: tiny gradients near it; adaptive steps escape it first",
            gradient=saddle_gradient,
            steps=200,
            lrs=_lrs(sgd=0.1, momentum=0.02, adagrad=0.5, rmsprop=0.02, adam=0.05),
            tolerance=1e-2,
        ),
        TestFunction(
            "rastrigin",
            rastrigin,
            ((0.0, 0.0),),
            (-4.0, 4.0),
            (-4.0, 4.0),
            (-2.3, 2.7),
            "many local minima: every local method stops in the nearest basin",
            gradient=rastrigin_gradient,
            steps=200,
            lrs=_lrs(sgd=2e-3, momentum=2e-3, adagrad=0.5, rmsprop=0.05, adam=0.1),
            tolerance=1e-2,
        ),
        TestFunction(
            "cliff",
            cliff,
            ((2.0, 0.0),),
            (-3.0, 6.0),
            (-3.0, 3.0),
            (-2.0, 1.5),
            "a cliff: one huge gradient throws SGD far away; clipping the norm keeps it on course",
            gradient=cliff_gradient,
            steps=250,
            lrs={"*": 0.1},
            optimizers=("sgd", "momentum", "adam"),
            log_contours=True,
            clip=1.0,
            tolerance=1e-2,
        ),
    )
}


def get_function(name: str) -> TestFunction:
    """The lab's test function called ``name``; unknown names suggest the nearest."""
    key = name.strip().lower()
    if key not in FUNCTIONS:
        raise unknown_name("test function", name, FUNCTIONS, f"choose from {', '.join(FUNCTIONS)}")
    return FUNCTIONS[key]
