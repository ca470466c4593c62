"""``InferenceSession``: onnxruntime's API over tinyrt's loader, passes and plan.

    import tinyrt as ort          # the one line that changes
    sess = ort.InferenceSession("model.onnx")
    name = sess.get_inputs()[0].name
    probs = sess.run(None, {name: x})[0]
"""
import os

import numpy as np

from . import dtypes, graph as graph_ir, kernels_select, limits, passes
from .errors import InputError, ModelError, TinyrtError
from .ops.sequence import Sequence
from .plan import Plan, check_support
from .proto import load_model


class SessionOptions:
    """The onnxruntime options that mean something in tinyrt."""

    def __init__(self):
        self.intra_op_num_threads = 0       # 0: let the kernels decide (all cores)
        self.inter_op_num_threads = 0       # accepted for compatibility; tinyrt runs nodes one at a time
        self.graph_optimization_level = GraphOptimizationLevel.ORT_ENABLE_ALL
        self.enable_profiling = False
        self.log_severity_level = 2
        self.kernels = None                 # "numba" | "numpy" | None (TINYRT_KERNELS, else the best there is)
        self.max_tensor_bytes = None        # bytes one tensor may take: None = automatic, 0 = no limit;
                                            # see tinyrt/limits.py and docs/limits.md


class GraphOptimizationLevel:
    ORT_DISABLE_ALL = 0
    ORT_ENABLE_BASIC = 1
    ORT_ENABLE_EXTENDED = 2
    ORT_ENABLE_ALL = 99


class NodeArg:
    """What get_inputs()/get_outputs() return: .name, .shape and .type, as in onnxruntime."""

    def __init__(self, spec):
        self.name = spec.name
        self.shape = list(spec.shape) if spec.shape is not None else None
        self.type = spec.type_string
        self.spec = spec

    def __repr__(self):
        return "NodeArg(name=%r, type=%r, shape=%r)" % (self.name, self.type, self.shape)


class ModelMetadata:
    def __init__(self, model):
        self.custom_metadata_map = dict(model.metadata)
        self.producer_name = model.producer.split(" ")[0] if model.producer else ""
        self.graph_name = model.graph.name
        self.domain = model.domain
        self.description = model.doc_string
        self.graph_description = ""
        self.version = model.model_version


class InferenceSession:
    """Load an ONNX model (path, bytes or binary file object) and run it.

    ``providers`` is accepted for compatibility with onnxruntime and ignored beyond that: tinyrt runs on
    the CPU.
    """

    def __init__(self, path_or_bytes, sess_options=None, providers=None, provider_options=None, **kwargs):
        self.options = sess_options or SessionOptions()
        self.kernels = kernels_select.choose(self.options)  # numba kernels or numpy ops; see kernels_select
        message, folder = load_model(path_or_bytes)
        try:
            self.model = graph_ir.build(message, folder)
            del message
            check_support(self.model.graph, self.model.opsets)
            self._inputs = [NodeArg(v) for v in self.model.graph.inputs]
            self._outputs = [NodeArg(v) for v in self.model.graph.outputs]
            level = self.options.graph_optimization_level
            with limits.scope(self._tensor_limit(0)):
                self.applied_passes = passes.optimize(self.model.graph, level) if level else []
                self.plan = Plan(self.model.graph)
                self.kernels.bind(self.plan)
        except TinyrtError:
            raise
        except RecursionError:
            raise ModelError("the model nests too deeply (Python's recursion limit)") from None
        except Exception as e:  # a malformed file tripping something no check foresaw: still a ModelError
            raise ModelError("tinyrt could not prepare this model (%s: %s); the file is probably malformed. "
                             "If onnxruntime runs it, please report this as a tinyrt bug." % (type(e).__name__, e)) from e
        self._model_path = path_or_bytes if isinstance(path_or_bytes, (str, os.PathLike)) else None

    def get_inputs(self):
        return list(self._inputs)

    def get_outputs(self):
        return list(self._outputs)

    def get_overridable_initializers(self):
        return []

    def get_modelmeta(self):
        return ModelMetadata(self.model)

    def get_providers(self):
        return ["CPUExecutionProvider"]

    def get_session_options(self):
        return self.options

    def run(self, output_names, input_feed, run_options=None):
        """Run the model: ``output_names`` (None for all) and ``input_feed`` {input name: array}."""
        return self.run_with_hook(output_names, input_feed, None)

    def run_with_hook(self, output_names, input_feed, hook):
        """``run``, with ``hook(step, inputs, compute)`` around every step (see ``Plan.run``).

        tinyrt's own addition to onnxruntime's API: ``tinyrt profile`` and ``tinyrt trace`` are built on it.
        """
        feeds = self._check_feeds(input_feed)
        names = self._check_output_names(output_names)
        fed = sum(limits.nbytes(v) for v in feeds.values())
        limit = self._tensor_limit(fed)
        work = limits.work_budget(limit, self.model.nbytes, fed)
        with limits.scope(limit, work), self.kernels.running(self.options.intra_op_num_threads):
            results = self.plan.run(feeds, hook=hook)
        return [_contiguous(results[name]) for name in names]

    def _tensor_limit(self, feed_bytes):
        return limits.tensor_limit(getattr(self.options, "max_tensor_bytes", None), self.model.nbytes, feed_bytes)

    def _check_output_names(self, output_names):
        known = [o.name for o in self._outputs]
        if output_names is None:
            return known
        for name in output_names:
            if name not in known:
                raise InputError("the model has no output %r; its outputs are %s" % (name, known))
        return list(output_names)

    def _check_feeds(self, input_feed):
        if not isinstance(input_feed, dict):
            raise InputError("feeds are a dict {input name: numpy array}, not %s" % type(input_feed).__name__)
        expected = {i.name: i for i in self._inputs}
        extra = [name for name in input_feed if name not in expected]
        if extra:
            raise InputError("the model has no input %s; its inputs are %s" % (", ".join(map(repr, extra)),
                                                                              list(expected)))
        missing = [name for name in expected if name not in input_feed]
        if missing:
            raise InputError("missing input %s; the model needs %s" % (", ".join(map(repr, missing)),
                                                                       _describe_inputs(self._inputs)))
        feeds = {}
        for name, arg in expected.items():
            feeds[name] = check_feed(arg.spec, input_feed[name])
        return feeds


def _describe_inputs(args):
    return ", ".join("%s: %s%s" % (a.name, a.type, a.shape) for a in args)


def check_feed(spec, value):
    """The feed as an array that fits ``spec``, or an InputError saying what was expected and given."""
    if spec.kind == "sequence":
        if not isinstance(value, (list, tuple)):
            raise InputError("input %r: expected a list of arrays (%s), got %s"
                             % (spec.name, spec.type_string, type(value).__name__))
        return Sequence(check_feed(spec.element, v) for v in value)
    if not isinstance(value, np.ndarray):
        if np.isscalar(value) or isinstance(value, (list, tuple)):
            value = np.asarray(value)
        else:
            raise InputError("input %r: expected a numpy array, got %s" % (spec.name, type(value).__name__))
    if spec.elem_type and dtypes.is_supported(spec.elem_type):
        want = dtypes.to_numpy(spec.elem_type)
        if value.dtype != want:
            raise InputError("input %r: expected %s (numpy %s), got %s; convert it with .astype(np.%s)"
                             % (spec.name, spec.type_string, want, value.dtype, want))
    if spec.shape is not None:
        if value.ndim != len(spec.shape):
            raise InputError("input %r: expected rank %d %s, got rank %d %s"
                             % (spec.name, len(spec.shape), _shape_text(spec.shape), value.ndim, list(value.shape)))
        for axis, (want, got) in enumerate(zip(spec.shape, value.shape)):
            if isinstance(want, int) and want != got:
                raise InputError("input %r: dimension %d must be %d %s, got %s"
                                 % (spec.name, axis, want, _shape_text(spec.shape), list(value.shape)))
    return value


def _shape_text(shape):
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _contiguous(value):
    """Outputs as onnxruntime gives them: C-contiguous arrays (inside the run, a conv's result may be a
    view of channels-last memory; see kernels_select)."""
    if isinstance(value, np.ndarray) and not value.flags.c_contiguous:
        return np.ascontiguousarray(value)
    return value
