"""Node conformance cases tinyrt deliberately does not run, each with the scope decision behind it.

Keep this tiny: fixing an op, or making tinyrt refuse what it does not implement (so the case counts as
refused), is better than excluding. tests/test_node_suite.py checks that every case named here still exists
in the installed onnx and that exclusions stay under 5% of the supported cases.
"""

_TRAINING_DROPOUT = ("training-mode Dropout (training_mode fed as true at run time) draws a random mask; "
                     "tinyrt runs inference only and refuses it when it runs (it cannot at load: the flag is "
                     "an input)")

# case name -> reason (a scope decision, not a bug report)
EXCLUDED = {
    "test_training_dropout": _TRAINING_DROPOUT,
    "test_training_dropout_default": _TRAINING_DROPOUT,
    "test_training_dropout_default_mask": _TRAINING_DROPOUT,
    "test_training_dropout_mask": _TRAINING_DROPOUT,
}

_SUB_BYTE = ("packed sub-byte integers (int4, uint4, int2, uint2) exist for weight-only quantisation of large "
             "language models; numpy has no such dtypes and CNN exports from torch never use them, so tinyrt "
             "refuses them at load (the harness checks that it does) and does not count them as refused")

# element type name (as tinyrt.dtypes.type_name gives it) -> reason: every case using one is excluded
EXCLUDED_ELEMENT_TYPES = {"int4": _SUB_BYTE, "uint4": _SUB_BYTE, "int2": _SUB_BYTE, "uint2": _SUB_BYTE}
