"""fast_constructor: a frozen dataclass made with plain stores is the frozen dataclass in every respect."""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import dataclass, field

import pytest

from snapbook.sandbox.checks import DoctorNote, Verdict, new_verdict
from snapbook.sandbox.frozen import fast_constructor


@dataclass(frozen=True)
class Plain:
    a: int
    b: str = "b"
    c: tuple[str, ...] = ()
    d: list[int] = field(default_factory=list)
    e: object = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Slotted:
    a: int
    b: str = "b"
    k: int = field(default=0, kw_only=True)


@pytest.mark.parametrize(
    ("cls", "args", "kwargs"),
    [
        (Plain, (1,), {}),
        (Plain, (1, "x", ("n",), [3]), {"e": object()}),
        (Slotted, (1,), {}),
        (Slotted, (1, "y"), {"k": 5}),
        (Verdict, (True, 200, "2007300", "Successful"), {}),
        (Verdict, (False, 401, "4017300", "Unauthorized. [Signature]", ("why",)), {"doctor": None}),
    ],
)
def test_the_same_instance_as_the_constructor_makes(cls, args, kwargs):
    made, usual = fast_constructor(cls)(*args, **kwargs), cls(*args, **kwargs)
    assert type(made) is cls
    assert made == usual and repr(made) == repr(usual)
    if cls is not Plain:  # Plain holds a list: unhashable either way
        assert hash(made) == hash(usual)
    for f in dataclasses.fields(cls):
        assert getattr(made, f.name) == getattr(usual, f.name)
    assert hasattr(made, "__dict__") == hasattr(usual, "__dict__")
    first, second = (f.name for f in dataclasses.fields(cls)[:2])
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(made, first, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        delattr(made, second)
    assert getattr(dataclasses.replace(made, **{first: 7}), first) == 7
    assert pickle.loads(pickle.dumps(made)) == usual


def test_defaults_are_fresh_per_instance_as_with_the_constructor():
    new_plain = fast_constructor(Plain)
    one, two = new_plain(1), new_plain(2)
    assert one.d == [] and one.d is not two.d


def test_wrong_arguments_are_refused_as_by_the_constructor():
    new_slotted = fast_constructor(Slotted)
    with pytest.raises(TypeError):
        new_slotted()  # a: missing
    with pytest.raises(TypeError):
        new_slotted(1, "b", 3)  # k is keyword-only
    with pytest.raises(TypeError):
        new_slotted(1, colour="blue")


def test_only_frozen_dataclasses_without_post_init():
    @dataclass
    class Mutable:
        a: int

    @dataclass(frozen=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:
            if self.a < 0:
                raise ValueError("a < 0")

    for cls in (Mutable, Checked, int):
        with pytest.raises(TypeError):
            fast_constructor(cls)


def test_the_sandbox_verdict_constructor_keeps_the_doctor():
    note = DoctorNote.__new__(DoctorNote)
    verdict = new_verdict(False, 401, "4017300", "Unauthorized. [Signature]", ("n",), doctor=note)
    assert type(verdict) is Verdict and verdict.doctor is note and verdict.client_key == ""
