"""SessionOptions, RunOptions and their enums, with onnxruntime's names and defaults.

tinyrt accepts every option onnxruntime has, so scripts written for onnxruntime run unchanged; the ones
tinyrt acts on are listed in docs/reference.md ("onnxruntime's API in tinyrt"). The rest are kept, so a
script reads back what it set, and change nothing.
"""
import enum

from .errors import ArgumentTypeError, OptionError


class GraphOptimizationLevel(enum.IntEnum):
    """How much tinyrt rewrites the graph: ORT_DISABLE_ALL runs the file exactly as written; every other
    level runs all of tinyrt's passes (tinyrt/passes: folding, fusing, dead code)."""
    ORT_DISABLE_ALL = 0
    ORT_ENABLE_BASIC = 1
    ORT_ENABLE_EXTENDED = 2
    ORT_ENABLE_LAYOUT = 3
    ORT_ENABLE_ALL = 99


class ExecutionMode(enum.IntEnum):
    """tinyrt always runs one node after another (ORT_PARALLEL is accepted and means the same)."""
    ORT_SEQUENTIAL = 0
    ORT_PARALLEL = 1


class ExecutionOrder(enum.IntEnum):
    """tinyrt runs nodes in the file's order wherever their inputs allow (every value is accepted)."""
    DEFAULT = 0
    PRIORITY_BASED = 1
    MEMORY_EFFICIENT = 2


class _ConfigEntries:
    """``add_*_config_entry`` / ``get_*_config_entry``: string keys and values, as onnxruntime keeps them."""

    def _config_set(self, key, value):
        if not isinstance(key, str) or not isinstance(value, str):
            raise ArgumentTypeError("config entries are strings: got key %r (%s), value %r (%s)"
                                    % (key, type(key).__name__, value, type(value).__name__))
        self._config[key] = value

    def _config_get(self, key, owner):
        if key not in self._config:
            raise OptionError("%s has no config entry %r (set: %s)"
                              % (owner, key, ", ".join(sorted(map(repr, self._config))) or "none"))
        return self._config[key]


class SessionOptions(_ConfigEntries):
    """onnxruntime's SessionOptions, plus tinyrt's own ``kernels`` and ``max_tensor_bytes``."""

    def __init__(self):
        # what tinyrt acts on
        self.intra_op_num_threads = 0       # 0: let the kernels decide (all cores)
        self.graph_optimization_level = GraphOptimizationLevel.ORT_ENABLE_ALL
        self.enable_profiling = False       # a Chrome-trace JSON per session (see tinyrt/profiling.py)
        self.profile_file_prefix = "onnxruntime_profile_"
        self.optimized_model_filepath = ""  # write the graph after tinyrt's passes here, as ONNX
        self.logid = ""                     # named in error messages
        self.log_severity_level = -1        # -1: the process default (set_default_logger_severity)
        self.log_verbosity_level = 0
        # accepted for compatibility; tinyrt runs nodes one at a time, in order, with numpy's memory
        self.inter_op_num_threads = 0
        self.execution_mode = ExecutionMode.ORT_SEQUENTIAL
        self.execution_order = ExecutionOrder.DEFAULT
        self.enable_cpu_mem_arena = True
        self.enable_mem_pattern = True
        self.enable_mem_reuse = True
        self.use_deterministic_compute = False
        self.use_per_session_threads = True
        # tinyrt's own
        self.kernels = None                 # "numba" | "numpy" | None (TINYRT_KERNELS, else the best there is)
        self.max_tensor_bytes = None        # bytes one tensor may take: None = automatic, 0 = no limit;
                                            # see tinyrt/limits.py and docs/limits.md
        self._config = {}
        self._files_in_memory = {}
        self._dims_by_name = {}
        self._dims_by_denotation = {}

    def add_session_config_entry(self, key, value):
        self._config_set(key, value)

    def get_session_config_entry(self, key):
        return self._config_get(key, "SessionOptions")

    def add_free_dimension_override_by_name(self, name, value):
        """Give the symbolic input dimension ``name`` (a dim_param such as 'batch') a fixed size."""
        self._dims_by_name[name] = _dimension(name, value)

    def add_free_dimension_override_by_denotation(self, denotation, value):
        """Give every input dimension with this denotation (e.g. 'DATA_BATCH') a fixed size."""
        self._dims_by_denotation[denotation] = _dimension(denotation, value)

    def add_external_initializers_from_files_in_memory(self, names, buffers, lengths):
        """Give the contents of external data files (by the location the model names) instead of files
        beside the model: ``names``, ``buffers`` (bytes-like) and their ``lengths``."""
        if not (len(names) == len(buffers) == len(lengths)):
            raise ArgumentTypeError("names, buffers and lengths must be as long as each other")
        for name, data, length in zip(names, buffers, lengths):
            data = bytes(memoryview(data).cast("B"))[:int(length)]
            if len(data) != int(length):
                raise ArgumentTypeError("external file %r: %d bytes given, length says %d" % (name, len(data), length))
            self._files_in_memory[name] = data

    def has_providers(self):
        return False

    def register_custom_ops_library(self, library_path):
        from .errors import UnsupportedError
        raise UnsupportedError("custom-op libraries (%r) are compiled for onnxruntime; tinyrt cannot load "
                               "them" % (library_path,))


class RunOptions(_ConfigEntries):
    """onnxruntime's RunOptions: ``terminate`` stops a run between two nodes (set it from another thread);
    ``logid`` names the run in error messages."""

    def __init__(self):
        self.logid = ""
        self.terminate = False
        self.log_severity_level = -1
        self.log_verbosity_level = 0
        self.only_execute_path_to_fetches = False   # accepted; tinyrt runs the whole graph
        self._config = {}

    def add_run_config_entry(self, key, value):
        self._config_set(key, value)

    def get_run_config_entry(self, key):
        return self._config_get(key, "RunOptions")


def _dimension(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ArgumentTypeError("free dimension %r: the size must be a non-negative int, got %r" % (name, value))
    return value
