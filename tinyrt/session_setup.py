"""What InferenceSession does with a model file at load, besides planning it: the argument checked, the
settings a file may carry (onnxruntime's ``ort_config`` metadata, free-dimension overrides), the
initializers a run may override, and the output types the file leaves out, inferred."""
import copy
import json
import os
import warnings

from . import graph as graph_ir, shape_inference
from .errors import ArgumentTypeError, ModelError, ModelFileNotFound
from .options import ExecutionMode, ExecutionOrder, GraphOptimizationLevel


def check_model_argument(path_or_bytes):
    if isinstance(path_or_bytes, (str, os.PathLike)):
        path = os.fspath(path_or_bytes)
        if isinstance(path, str) and not os.path.exists(path):
            raise ModelFileNotFound("cannot read model file %r: it does not exist" % path)
    elif not isinstance(path_or_bytes, (bytes, bytearray, memoryview)) and not hasattr(path_or_bytes, "read"):
        raise ArgumentTypeError("a model is a path, bytes or a binary file object, not %s"
                                % type(path_or_bytes).__name__)


def with_inferred_types(graph):
    """The graph's output specs, with what the file leaves out (element type, shape) inferred as onnxruntime
    reports it (see tinyrt/shape_inference.py); the graph itself is left as it is."""
    specs = list(graph.outputs)
    if all(s.kind != "tensor" or (s.elem_type and s.shape is not None) for s in specs):
        return specs
    try:
        inferred = shape_inference.infer(graph)
    except Exception:  # what the session reports must never stop a model from loading
        return specs
    out = []
    for spec in specs:
        elem, shape = inferred.get(spec.name, (None, None))
        if spec.kind == "tensor" and (elem or shape is not None):
            spec = copy.copy(spec)
            spec.elem_type = spec.elem_type or elem
            spec.shape = spec.shape if spec.shape is not None else shape
        out.append(spec)
    return out


def reads_config_from_model(kwargs):
    """onnxruntime's read_config_from_model=1 keyword, else its ORT_LOAD_CONFIG_FROM_MODEL=1 variable."""
    if "read_config_from_model" in kwargs:
        return int(kwargs["read_config_from_model"]) == 1
    return os.environ.get("ORT_LOAD_CONFIG_FROM_MODEL") == "1"


_MODEL_CONFIG_TYPES = {"intra_op_num_threads": int, "inter_op_num_threads": int, "enable_profiling": bool,
                       "graph_optimization_level": GraphOptimizationLevel, "execution_mode": ExecutionMode,
                       "execution_order": ExecutionOrder, "log_severity_level": int, "log_verbosity_level": int,
                       "enable_mem_pattern": bool, "enable_cpu_mem_arena": bool, "enable_mem_reuse": bool,
                       "use_deterministic_compute": bool}


def options_from_model(message, options):
    """A copy of ``options`` with the file's metadata entry ``ort_config`` ({"session_options": {...}})
    applied, as onnxruntime applies it when asked to."""
    text = {e.key: e.value for e in message.metadata_props}.get("ort_config")
    if text is None:
        return options
    try:
        settings = json.loads(text).get("session_options", {})
        assert isinstance(settings, dict)
    except (ValueError, AttributeError, AssertionError):
        raise ModelError("the model's metadata entry ort_config is not JSON of the form "
                         "{\"session_options\": {...}}") from None
    options = copy.copy(options)
    for key, value in settings.items():
        if key not in _MODEL_CONFIG_TYPES:
            warnings.warn("the model's ort_config sets %r, which tinyrt does not read" % key)
            continue
        try:
            setattr(options, key, _MODEL_CONFIG_TYPES[key](value))
        except (TypeError, ValueError):
            raise ModelError("the model's ort_config sets %s to %r, which is not a valid value" % (key, value)) from None
    return options


def override_free_dimensions(graph_message, options):
    """SessionOptions.add_free_dimension_override_by_name/_by_denotation: fix symbolic input dimensions."""
    by_name = getattr(options, "_dims_by_name", {})
    by_denotation = getattr(options, "_dims_by_denotation", {})
    if not by_name and not by_denotation:
        return
    for vi in graph_message.input:
        t = vi.type
        if t is None or t.tensor_type is None or t.tensor_type.shape is None:
            continue
        for d in t.tensor_type.shape.dim:
            if "dim_value" in d.present:
                continue
            value = by_name.get(d.dim_param) if d.dim_param else None
            if value is None and d.denotation:
                value = by_denotation.get(d.denotation)
            if value is not None:
                d.dim_value = value
                d.present.add("dim_value")


def overridable_initializers(message):
    """ValueSpecs of the initializers the graph also lists as inputs; IR version 4 on, onnxruntime lets a
    feed replace those (before, every initializer was listed as an input and is a constant)."""
    if message.ir_version < 4:
        return []
    names = {t.name for t in message.graph.initializer}
    return [graph_ir.value_spec(vi) for vi in message.graph.input if vi.name in names]


class AsWritten:
    """The graph as written, with the overridable initializers turned into inputs (and their values)."""

    def __init__(self, graph, overridable):
        self.graph = copy_graph(graph)
        names = [spec.name for spec in overridable]
        self.initial = {name: self.graph.initializers.pop(name) for name in names}
        self.graph.inputs = self.graph.inputs + [copy.copy(spec) for spec in overridable]


def copy_graph(graph):
    """A copy of a graph that passes may rewrite without touching the original (arrays are shared)."""
    nodes = [graph_ir.Node(n.op_type, n.inputs, n.outputs, {k: copy_attr(v) for k, v in n.attrs.items()},
                           n.name, n.domain, n.opset) for n in graph.nodes]
    return graph_ir.Graph(graph.name, nodes, [copy.copy(v) for v in graph.inputs],
                          [copy.copy(v) for v in graph.outputs], dict(graph.initializers),
                          {k: copy.copy(v) for k, v in graph.value_info.items()})


def copy_attr(value):
    if isinstance(value, graph_ir.Graph):
        return copy_graph(value)
    if isinstance(value, list):
        return [copy_attr(v) for v in value]
    return value
