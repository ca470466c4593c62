"""Optional values: a tensor or a sequence that may be absent. tinyrt holds an empty optional as None and a
full one as the value itself (there is no wrapper), so Identity, If and Loop pass optionals unchanged.

    Optional(x)              x; with no input, an empty optional of the attribute `type`
    OptionalHasElement(x)    bool scalar: whether x holds a value (18 on: x may be absent, or a plain value)
    OptionalGetElement(x)    the value in x (an error when empty); 18 on, a plain value is returned as is
"""
import numpy as np

from ..errors import InputError
from .registry import op


# 28 only widened the types the value may have
@op("Optional", 15, 28)
def optional(x=None, *, type=None):  # noqa: A002 (ONNX's attribute name)
    # `type` (a TypeProto) only declares what an empty optional would hold: tinyrt's None needs no type.
    return x


@op("OptionalHasElement", 15, 18, 28)
def optional_has_element(x=None):
    return np.array(x is not None)


@op("OptionalGetElement", 15, 18, 28)
def optional_get_element(x):
    if x is None:
        raise InputError("OptionalGetElement: the optional is empty")
    return x
