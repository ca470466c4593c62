"""Graph passes: rewrites that keep the results and make the graph smaller or faster to run.

They are listed here, in the order they run; ``SessionOptions.graph_optimization_level = 0`` turns them
all off (for teaching and debugging: the graph then runs exactly as written in the file).
"""
from . import cleanup, fold_constants, fuse_activation, fuse_batchnorm, quantization

PASSES = [
    ("remove dead nodes", cleanup.remove_dead_nodes),  # first too: the passes after it never see them
    ("remove Identity and inference Dropout", cleanup.remove_identities),
    ("fold constants", fold_constants.fold_constants),
    ("QuantizeLinear -> DequantizeLinear pairs as one QuantizeDequantize", quantization.fuse_quantize_dequantize),
    ("fold BatchNormalization and per-channel Mul/Add into Conv", fuse_batchnorm.fold_batchnorm),
    ("fuse residual Add and activation into Conv (FusedConv)", fuse_activation.fuse_activation),
    ("a conv's QuantizeDequantize into the conv (FusedConv)", quantization.fuse_rounding_into_conv),
    ("remove dead nodes", cleanup.remove_dead_nodes),
]


def optimize(graph, level=99):
    """Run every pass on ``graph`` in place; returns the names of the passes that changed something."""
    changed = []
    for name, rewrite in PASSES:
        if rewrite(graph) and name not in changed:
            changed.append(name)
    return changed
