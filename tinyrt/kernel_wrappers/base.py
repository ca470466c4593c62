"""What every kernel wrapper shares (see the package docstring)."""


class KernelWrapper:
    """A step's function on the numba path: its backend and kernels (``k``), the numpy op it falls back to
    (``ref``), and the node's attributes for calls that come without them (``step_attrs``: the program
    passes none to a wrapper, bind sets them)."""

    kernel_name = "numba"  # what tinyrt profile / trace / code show: each wrapper names its kernel
    step_attrs = {}

    def __init__(self, backend, step):
        self.backend = backend
        self.k = backend.k
        self.ref = step.fn
