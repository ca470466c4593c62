"""``InferenceSession``: onnxruntime's API over tinyrt's loader, passes and plan.

    import tinyrt as ort          # the one line that changes
    sess = ort.InferenceSession("model.onnx")
    name = sess.get_inputs()[0].name
    probs = sess.run(None, {name: x})[0]

Every array ``run`` returns belongs to the caller: an output that is a constant, an initializer, a fed
input, or a view of one of them is copied (see tinyrt/ownership.py), so writing into it never changes a later
run. What differs from onnxruntime is listed in docs/reference.md.
"""
import copy
import os
import threading
import time

from . import environment, graph as graph_ir, kernels_select, limits, passes
from .errors import ArgumentTypeError, InputError, ModelError, OptionError, RunTerminated, TinyrtError, UnsupportedError
from .feeds import check_feed, describe_inputs
from .options import ExecutionMode, ExecutionOrder, GraphOptimizationLevel, RunOptions, SessionOptions  # noqa: F401
from .ownership import Ownership
from .plan import Plan
from .profiling import Profiler
from .proto import load_model, writer
from .proto.diagnose import name_the_file
from .session_setup import (AsWritten, check_model_argument, options_from_model, overridable_initializers,
                            override_free_dimensions, reads_config_from_model, with_inferred_types)
from .support import check_support

UNSET_MODEL_VERSION = 2 ** 63 - 1   # what onnxruntime reports when the file gives no model_version


class NodeArg:
    """What get_inputs()/get_outputs() return: .name, .shape and .type, as in onnxruntime."""

    def __init__(self, spec):
        self.name = spec.name
        # onnxruntime gives [] for sequences and optionals, and for tensors of unknown rank
        self.shape = list(spec.shape) if spec.kind == "tensor" and spec.shape is not None else []
        self.type = spec.type_string
        self.spec = spec

    def __repr__(self):
        return "NodeArg(name=%r, type=%r, shape=%r)" % (self.name, self.type, self.shape)


class ModelMetadata:
    """get_modelmeta(): the file's own fields, as onnxruntime reports them."""

    def __init__(self, message=None):
        self.producer_name = ""
        self.graph_name = ""
        self.domain = ""
        self.description = ""
        self.graph_description = ""
        self.version = UNSET_MODEL_VERSION
        self.custom_metadata_map = {}
        if message is not None:
            self.producer_name = message.producer_name
            self.graph_name = message.graph.name
            self.domain = message.domain
            self.description = message.doc_string
            self.graph_description = message.graph.doc_string
            if "model_version" in message.present:
                self.version = message.model_version
            self.custom_metadata_map = {e.key: e.value for e in message.metadata_props}


class MemoryInfo:
    """What get_input_memory_infos() gives: onnxruntime's OrtMemoryInfo fields for the CPU's memory."""

    def __init__(self):
        self.name = "Cpu"
        self.device_id = 0
        self.mem_type = 0           # OrtMemType.DEFAULT
        self.allocator_type = 1     # OrtAllocatorType.ORT_ARENA_ALLOCATOR (numpy's allocator, here)
        self.device_mem_type = 0    # OrtDeviceMemoryType.DEFAULT
        self.device_vendor_id = 0

    def __repr__(self):
        return "MemoryInfo(name='Cpu', device_id=0)"


CPU_MEMORY = MemoryInfo()


class AssignedSubgraph:
    """get_provider_graph_assignment_info(): nodes (with .domain, .op_type, .name) and their provider."""

    def __init__(self, ep_name, nodes):
        self.ep_name = ep_name
        self._nodes = list(nodes)

    def get_nodes(self):
        return list(self._nodes)


class InferenceSession:
    """Load an ONNX model (path, bytes or binary file object) and run it.

    ``providers`` takes onnxruntime's provider names: tinyrt runs on the CPU and warns about the others.
    """

    def __init__(self, path_or_bytes, sess_options=None, providers=None, provider_options=None, **kwargs):
        check_model_argument(path_or_bytes)
        started_ns = time.monotonic_ns()
        self.options = sess_options or SessionOptions()
        self._providers, self._provider_options = environment.choose_providers(providers, provider_options,
                                                                               strict=False)
        self._fallback = int(kwargs.get("enable_fallback", 1)) == 1   # kept for get/set; tinyrt has no EPs
        self._lock = threading.Lock()
        message, folder = load_model(path_or_bytes)
        loaded_ns = time.monotonic_ns()
        if reads_config_from_model(kwargs):
            self.options = options_from_model(message, self.options)
        self._profiler = Profiler(self.options.profile_file_prefix, started_ns) if self.options.enable_profiling else None
        self._profiling_start_ns = self._profiler.start_ns if self._profiler else 0
        if self._profiler:
            self._profiler.add_session_event("model_loading_uri" if folder else "model_loading_array", started_ns,
                                             loaded_ns)
        self.kernels = kernels_select.choose(self.options)  # numba kernels or numpy ops; see kernels_select
        message_name = message.source_name
        try:
            override_free_dimensions(message.graph, self.options)
            self._metadata = ModelMetadata(message)
            overridable = overridable_initializers(message)
            self.model = graph_ir.build(message, folder, getattr(self.options, "_files_in_memory", None))
            del message
            check_support(self.model.graph, self.model.opsets)
            self._inputs = [NodeArg(v) for v in self.model.graph.inputs]
            self._outputs = [NodeArg(v) for v in with_inferred_types(self.model.graph)]
            self._overridable = [NodeArg(v) for v in overridable]
            # Feeding an overridable initializer runs a plan of the file as written, with the initializers
            # as inputs: tinyrt's passes fold constants, and a folded weight could not be replaced.
            self._as_written = AsWritten(self.model.graph, overridable) if overridable else None
            self._override_plan = None
            level = self.options.graph_optimization_level
            with limits.scope(self._tensor_limit(0)):
                self.applied_passes = passes.optimize(self.model.graph, level, self.kernels.name) if level else []
                self.plan = Plan(self.model.graph)
                self.kernels.bind(self.plan)
            self._ownership = Ownership(self.model.graph, self.plan)
            if self._as_written is not None:  # the initializers' own values, which passes may have folded away
                self._ownership.keep_graph(self._as_written.graph)
                self._ownership.keep_arrays(self._as_written.initial.values())
            if self.options.optimized_model_filepath:
                self._save_optimized_model(overridable)
        except ModelError as e:    # e.g. external data missing: say which model file it is about
            raise name_the_file(e, message_name) from None
        except TinyrtError:
            raise
        except RecursionError:
            raise ModelError("the model nests too deeply (Python's recursion limit)") from None
        except Exception as e:  # a malformed file tripping something no check foresaw: still a ModelError
            raise ModelError("tinyrt could not prepare this model (%s: %s); the file is probably malformed. "
                             "If onnxruntime runs it, please report this as a tinyrt bug." % (type(e).__name__, e)) from e
        self._model_path = os.fspath(path_or_bytes) if isinstance(path_or_bytes, (str, os.PathLike)) else None
        if self._profiler:
            self._profiler.add_session_event("session_initialization", loaded_ns, time.monotonic_ns())
        environment.logger.debug("session ready: %d nodes after passes %s, %s kernels",
                                 len(self.model.graph.nodes), self.applied_passes or "none", self.kernels.name,
                                 extra={"logid": self.options.logid})

    def _save_optimized_model(self, overridable):
        """SessionOptions.optimized_model_filepath: the graph after tinyrt's passes, as an ONNX file."""
        config = getattr(self.options, "_config", {})
        external = config.get("session.optimized_model_external_initializers_file_name") or None
        try:
            min_bytes = int(config.get("session.optimized_model_external_initializers_min_size_in_bytes", "1024"))
        except ValueError:
            raise InputError("session.optimized_model_external_initializers_min_size_in_bytes must be an integer, "
                             "not %r" % config["session.optimized_model_external_initializers_min_size_in_bytes"])
        try:
            writer.write_model(self.options.optimized_model_filepath, self.model, self.model.graph,
                               [copy.copy(spec) for spec in overridable], external, min_bytes)
        except OSError as e:
            raise InputError("cannot write the optimized model to %r: %s"
                             % (self.options.optimized_model_filepath, e.strerror or e)) from None

    # --- what the model is -------------------------------------------------------------------------------

    def get_inputs(self):
        return list(self._inputs)

    def get_outputs(self):
        return list(self._outputs)

    def get_overridable_initializers(self):
        """Initializers the file also lists as inputs (IR version 4 on): a feed may replace them."""
        return list(self._overridable)

    def get_modelmeta(self):
        return self._metadata

    def get_session_options(self):
        return self.options

    # --- providers ---------------------------------------------------------------------------------------

    def get_providers(self):
        return list(self._providers)

    def get_provider_options(self):
        return {name: dict(options) for name, options in self._provider_options.items()}

    def set_providers(self, providers=None, provider_options=None):
        """Checks the names like onnxruntime ('Unknown Provider Type' for a name it does not know); tinyrt
        keeps running on the CPU."""
        self._providers, self._provider_options = environment.choose_providers(providers, provider_options,
                                                                               strict=True)

    def get_provider_graph_assignment_info(self):
        """Which provider runs which nodes (all on the CPU in tinyrt): one subgraph a node, as onnxruntime
        reports its CPU provider's. Needs the session config entry session.record_ep_graph_assignment_info=1."""
        if getattr(self.options, "_config", {}).get("session.record_ep_graph_assignment_info") != "1":
            raise OptionError("set the session config entry 'session.record_ep_graph_assignment_info' to \"1\" "
                              "before creating the session to get the provider assignment")
        return [AssignedSubgraph(environment.CPU, [node]) for node in self.model.graph.nodes]

    def get_input_memory_infos(self):
        """Where each input lives: the CPU's memory, for every input."""
        return [CPU_MEMORY] * len(self._inputs)

    def get_output_memory_infos(self):
        return [CPU_MEMORY] * len(self._outputs)

    def get_input_epdevices(self):
        """onnxruntime lists each input's execution-provider device; tinyrt has none to name (None)."""
        return [None] * len(self._inputs)

    def set_ep_dynamic_options(self, options):
        """Run-time options of execution providers (e.g. a workload type); the CPU takes none, as in
        onnxruntime, where its CPU provider accepts and ignores them."""
        if not isinstance(options, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                    for k, v in options.items()):
            raise ArgumentTypeError("provider options are a dict of strings, not %r" % (options,))

    def get_tuning_results(self):
        """tinyrt has no tunable kernels: nothing to report."""
        return []

    def set_tuning_results(self, results, *, error_on_invalid=False):
        if results and error_on_invalid:
            raise OptionError("tinyrt has no tunable kernels: it cannot take tuning results for %s"
                              % ", ".join(sorted({str(r.get("ep")) for r in results if isinstance(r, dict)})))

    def disable_fallback(self):
        self._fallback = False

    def enable_fallback(self):
        self._fallback = True

    # --- profiling ---------------------------------------------------------------------------------------

    def end_profiling(self):
        """Write the profile (SessionOptions.enable_profiling) and return its path; '' when not profiling."""
        profiler, self._profiler = self._profiler, None
        return profiler.end() if profiler else ""

    def get_profiling_start_time_ns(self):
        return self._profiling_start_ns

    # --- running -----------------------------------------------------------------------------------------

    def run(self, output_names, input_feed, run_options=None):
        """Run the model: ``output_names`` (None or [] for all) and ``input_feed`` {input name: array}."""
        profiler = self._profiler
        if profiler is None:  # the compiled program looks at run_options.terminate itself (see Plan.run)
            return self._run(output_names, input_feed, None, run_options, None)
        hooks = [profiler.node_hook()]
        if run_options is not None:
            hooks.insert(0, _terminate_hook(run_options))
        return self._run(output_names, input_feed, _chain(hooks), run_options, profiler)

    def run_with_hook(self, output_names, input_feed, hook):
        """``run``, with ``hook(step, inputs, compute)`` around every step (see ``Plan.run``).

        tinyrt's own addition to onnxruntime's API: ``tinyrt profile`` and ``tinyrt trace`` are built on it.
        """
        return self._run(output_names, input_feed, hook, None, None)

    def run_async(self, output_names, input_feed, callback, user_data, run_options=None):
        """``run`` in a new thread, then ``callback(outputs, user_data, error message or '')``."""
        def work():
            try:
                outputs = self.run(output_names, input_feed, run_options)
            except TinyrtError as e:
                callback(None, user_data, str(e))
            else:
                callback(outputs, user_data, "")
        threading.Thread(target=work, daemon=True).start()

    def io_binding(self):
        raise UnsupportedError("IOBinding binds device memory; tinyrt runs on numpy arrays: use run()")

    def run_with_ort_values(self, output_names, input_dict_ort_values, run_options=None):
        raise UnsupportedError("OrtValue is onnxruntime's device-memory wrapper; tinyrt runs on numpy arrays: "
                               "use run()")

    def _run(self, output_names, input_feed, hook, run_options, profiler):
        feeds, overrides = self._check_feeds(input_feed)
        names = self._check_output_names(output_names)
        plan = self.plan
        if overrides:
            plan = self._plan_for_overrides()
            feeds.update({a.name: self._as_written.initial[a.name] for a in self._overridable})
            feeds.update(overrides)
        fed = sum(limits.nbytes(v) for v in feeds.values())
        limit = self._tensor_limit(fed)
        work = limits.work_budget(limit, self.model.nbytes, fed)
        started = time.monotonic_ns()
        try:
            if run_options is not None and run_options.terminate:
                raise RunTerminated("the run was not started: its RunOptions.terminate is set")
            with limits.scope(limit, work), self.kernels.running(self.options.intra_op_num_threads):
                results = plan.run(feeds, hook=hook, stop=run_options if hook is None else None,
                                   width=getattr(self.kernels, "threads", None))
        except TinyrtError as e:
            _name_the_run(e, run_options, self.options)
            raise
        if profiler is not None:
            profiler.add_session_event("model_run", started, time.monotonic_ns())
        return self._ownership.outputs(results, names, input_feed)

    def _plan_for_overrides(self):
        with self._lock:
            if self._override_plan is None:
                with limits.scope(self._tensor_limit(0)):
                    plan = Plan(self._as_written.graph)
                    self.kernels.bind(plan)
                self._override_plan = plan
            return self._override_plan

    def _tensor_limit(self, feed_bytes):
        return limits.tensor_limit(getattr(self.options, "max_tensor_bytes", None), self.model.nbytes, feed_bytes)

    def _check_output_names(self, output_names):
        known = [o.name for o in self._outputs]
        if not output_names:  # None or []: every output, as in onnxruntime
            return known
        if isinstance(output_names, str):
            raise ArgumentTypeError("output_names is a list of names, not the string %r" % output_names)
        for name in output_names:
            if name not in known:
                raise InputError("the model has no output %r; its outputs are %s" % (name, known))
        return list(output_names)

    def _check_feeds(self, input_feed):
        """(feeds for the model's inputs, feeds replacing overridable initializers)."""
        if not isinstance(input_feed, dict):
            raise InputError("feeds are a dict {input name: numpy array}, not %s" % type(input_feed).__name__)
        expected = {i.name: i for i in self._inputs}
        replaceable = {i.name: i for i in self._overridable}
        extra = [name for name in input_feed if name not in expected and name not in replaceable]
        if extra:
            raise InputError("the model has no input %s; its inputs are %s" % (", ".join(map(repr, extra)),
                                                                              list(expected)))
        missing = [name for name, arg in expected.items()
                   if name not in input_feed and arg.spec.kind != "optional"]
        if missing:
            raise InputError("missing input %s; the model needs %s" % (", ".join(map(repr, missing)),
                                                                       describe_inputs(self._inputs)))
        feeds = {}
        for name, arg in expected.items():
            feeds[name] = check_feed(arg.spec, input_feed.get(name))
        overrides = {}
        for name, arg in replaceable.items():
            if name in input_feed:
                overrides[name] = check_feed(arg.spec, input_feed[name])
        return feeds, overrides





# --- run options ---------------------------------------------------------------------------------------------

def _terminate_hook(run_options):
    """Stops the run before the next node once ``run_options.terminate`` is set (e.g. by another thread)."""
    def hook(step, inputs, compute):
        if run_options.terminate:
            raise RunTerminated("the run stopped before %s: its RunOptions.terminate was set"
                                % step.node.describe())
        return compute()
    return hook


def _chain(hooks):
    """One hook running ``hooks`` around each other (the first outermost); None for none."""
    if not hooks:
        return None
    if len(hooks) == 1:
        return hooks[0]
    outer, inner = hooks[0], _chain(hooks[1:])
    return lambda step, inputs, compute: outer(step, inputs, lambda: inner(step, inputs, compute))


def _name_the_run(error, run_options, session_options):
    """Put the run's (else the session's) logid in front of an error's message."""
    logid = getattr(run_options, "logid", "") or getattr(session_options, "logid", "")
    if logid and error.args and isinstance(error.args[0], str):
        error.args = ("[%s] %s" % (logid, error.args[0]),) + error.args[1:]
