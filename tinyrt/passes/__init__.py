"""Graph passes: rewrites that keep the results and make the graph smaller or faster to run.

They are listed here, in the order they run, each with the ``SessionOptions.graph_optimization_level``
from which it runs, as onnxruntime sorts its own: BASIC (1) removes and folds without changing an op's
kind (dead nodes, Identity/Dropout, constants, repeated nodes, BatchNormalization and per-channel Mul/Add into Conv);
EXTENDED (2) and ALL (99) also fuse nodes into tinyrt's own ops (FusedConv, QuantizeDequantize,
GatherNonZero, ConcatShuffle).
``graph_optimization_level = 0`` turns them all off (for teaching and debugging: the graph then runs
exactly as written in the file).

A pass that is one path's choice of kernel (the fourth field: the kernels it runs for, else every path)
runs only there: the numpy path's PointwiseDepthwise, say, is its way to run two convs the numba path's
kernels run as they are.
"""
from . import channel_shuffle, cleanup, common_subexpressions, fold_constants, fuse_activation, fuse_batchnorm, \
    fuse_pointwise_depthwise, mask_select, quantization

BASIC, EXTENDED = 1, 2

PASSES = [
    ("remove dead nodes", BASIC, cleanup.remove_dead_nodes),  # first too: the passes after never see them
    ("remove Identity and inference Dropout", BASIC, cleanup.remove_identities),
    ("fold constants", BASIC, fold_constants.fold_constants),
    ("merge repeated nodes (common subexpressions)", BASIC, common_subexpressions.merge_common_subexpressions),
    ("QuantizeLinear -> DequantizeLinear pairs as one QuantizeDequantize", EXTENDED,
     quantization.fuse_quantize_dequantize),
    ("fold BatchNormalization and per-channel Mul/Add into Conv", BASIC, fuse_batchnorm.fold_batchnorm),
    ("fuse residual Add and activation into Conv (FusedConv)", EXTENDED, fuse_activation.fuse_activation),
    ("a conv's QuantizeDequantize into the conv (FusedConv)", EXTENDED, quantization.fuse_rounding_into_conv),
    ("the rounding of the model's input into the conv that reads it (FusedConv)", EXTENDED,
     quantization.fuse_input_rounding),
    ("an Add into the QuantizeDequantize after it", EXTENDED, quantization.fuse_add_into_rounding),
    ("drop a QuantizeDequantize of values rounded alike already", EXTENDED, quantization.drop_repeated_rounding),
    ("a rounding that only convs read hands on whole steps (its scale in their weights)", EXTENDED,
     quantization.round_in_steps),
    ("torch's data[mask] (GatherND of Transpose of NonZero) as one GatherNonZero", EXTENDED,
     mask_select.fuse_mask_select),
    ("ShuffleNet's channel shuffle (Concat, Reshape, Transpose, Reshape) as one ConcatShuffle", EXTENDED,
     channel_shuffle.fuse_channel_shuffle),
    ("a 1x1 conv and the stride-2 depthwise conv reading it as one PointwiseDepthwise", EXTENDED,
     fuse_pointwise_depthwise.fuse_pointwise_depthwise, ("numpy",)),
    ("remove dead nodes", BASIC, cleanup.remove_dead_nodes),
]


def optimize(graph, level=99, kernels=None):
    """Run the passes of ``level`` (see above) on ``graph`` in place, those of one path's kernels only for
    ``kernels`` ("numba", "numpy"; None: none of those); returns the names of those that changed something."""
    changed = []
    dirty = True  # whether a pass changed the graph since dead nodes were last removed
    for name, since, rewrite, *paths in PASSES:
        if paths and kernels not in paths[0]:
            continue
        if level < since or (rewrite is cleanup.remove_dead_nodes and not dirty):
            continue  # (removing dead nodes twice in a row finds none the second time)
        did = rewrite(graph)
        dirty = (dirty or did) if rewrite is not cleanup.remove_dead_nodes else False
        if did and name not in changed:
            changed.append(name)
    return changed
