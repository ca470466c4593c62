"""numba-compiled kernels for tinyrt's heaviest ops (filled in by the kernels issue).

tinyrt uses them when numba imports; each kernel keeps the contract of tinyrt's numpy op of the same name.
"""
