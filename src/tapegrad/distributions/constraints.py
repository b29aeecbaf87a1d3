"""The supports and parameter domains of distributions (PyTorch's `constraints`), as checks on
tensors that return a bool tensor (True where a value satisfies the constraint)."""
from __future__ import annotations

from .._core import grad_mode as _grad_mode
from .._functions.linalg import cholesky_op
from .._tensor.apply import apply
from .._tensor.tensor import Tensor


class Constraint:
    """A region of values; `check(value)` is True where `value` lies in it (per event)."""

    is_discrete = False
    event_dim = 0

    def check(self, value: Tensor) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return type(self).__name__.lstrip("_") + "()"


class _Real(Constraint):
    def check(self, value):
        return value == value  # False for NaN


class _GreaterThan(Constraint):
    def __init__(self, lower_bound) -> None:
        self.lower_bound = lower_bound

    def check(self, value):
        return value > self.lower_bound

    def __repr__(self) -> str:
        return f"GreaterThan(lower_bound={self.lower_bound})"


class _LessThan(Constraint):
    def __init__(self, upper_bound) -> None:
        self.upper_bound = upper_bound

    def check(self, value):
        return value < self.upper_bound

    def __repr__(self) -> str:
        return f"LessThan(upper_bound={self.upper_bound})"


class _GreaterThanEq(Constraint):
    def __init__(self, lower_bound) -> None:
        self.lower_bound = lower_bound

    def check(self, value):
        return value >= self.lower_bound

    def __repr__(self) -> str:
        return f"GreaterThanEq(lower_bound={self.lower_bound})"


class _Interval(Constraint):
    def __init__(self, lower_bound, upper_bound) -> None:
        self.lower_bound, self.upper_bound = lower_bound, upper_bound

    def check(self, value):
        return (value >= self.lower_bound) & (value <= self.upper_bound)

    def __repr__(self) -> str:
        return f"Interval(lower_bound={self.lower_bound}, upper_bound={self.upper_bound})"


class _Boolean(Constraint):
    is_discrete = True

    def check(self, value):
        return (value == 0) | (value == 1)


class _IntegerInterval(Constraint):
    is_discrete = True

    def __init__(self, lower_bound, upper_bound) -> None:
        self.lower_bound, self.upper_bound = lower_bound, upper_bound

    def check(self, value):
        return (value % 1 == 0) & (value >= self.lower_bound) & (value <= self.upper_bound)

    def __repr__(self) -> str:
        return f"IntegerInterval(lower_bound={self.lower_bound}, upper_bound={self.upper_bound})"


class _Simplex(Constraint):
    event_dim = 1

    def check(self, value):
        return (value >= 0).all(-1) & ((value.sum(-1) - 1).abs() < 1e-6)


class _OneHot(Constraint):
    is_discrete = True
    event_dim = 1

    def check(self, value):
        return ((value == 0) | (value == 1)).all(-1) & (value.sum(-1) == 1)


class _IndependentReal(Constraint):
    event_dim = 1

    def check(self, value):
        return (value == value).all(-1)

    def __repr__(self) -> str:
        return "IndependentConstraint(Real(), 1)"


class _IndependentPositive(Constraint):
    event_dim = 1

    def check(self, value):
        return (value > 0).all(-1)

    def __repr__(self) -> str:
        return "IndependentConstraint(GreaterThan(lower_bound=0.0), 1)"


class _LowerCholesky(Constraint):
    event_dim = 2

    def check(self, value):
        lower = (value.tril() == value).flatten(-2).all(-1)
        return lower & (value.diagonal(dim1=-2, dim2=-1) > 0).all(-1)


class _PositiveDefinite(Constraint):
    event_dim = 2

    def check(self, value):
        sym = ((value - value.transpose(-1, -2)).abs() < 1e-6).flatten(-2).all(-1)
        # the factorization's row, not `cholesky`, which raises: NaN where not positive definite
        chol = apply(cholesky_op, value, upper=False)
        return sym & (chol == chol).flatten(-2).all(-1)


real = _Real()
real_vector = _IndependentReal()
positive = _GreaterThan(0.0)
nonnegative = _GreaterThanEq(0.0)
independent_positive = _IndependentPositive()
unit_interval = _Interval(0.0, 1.0)
boolean = _Boolean()
simplex = _Simplex()
one_hot = _OneHot()
lower_cholesky = _LowerCholesky()
positive_definite = _PositiveDefinite()


def greater_than(lower_bound) -> Constraint:
    return _GreaterThan(lower_bound)


def less_than(upper_bound) -> Constraint:
    return _LessThan(upper_bound)


def interval(lower_bound, upper_bound) -> Constraint:
    return _Interval(lower_bound, upper_bound)


def integer_interval(lower_bound, upper_bound) -> Constraint:
    return _IntegerInterval(lower_bound, upper_bound)


def holds(constraint: Constraint, value: Tensor) -> bool:
    """Whether every element of `value` satisfies `constraint` (computes the value now)."""
    with _grad_mode.no_grad():
        return bool(constraint.check(value).all())
