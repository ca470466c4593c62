"""The process-wide functions onnxruntime has at module level: providers, device, version, logging, seed.

tinyrt has one execution provider, the CPU; it keeps onnxruntime's list of provider names so that
``set_providers(["CUDAExecutionProvider"])`` warns and runs on the CPU (as onnxruntime does without a GPU)
while a misspelt name is an error.
"""
import collections.abc
import logging
import warnings

from .errors import ArgumentTypeError, InputError, OptionError

CPU = "CPUExecutionProvider"

# onnxruntime 1.32's get_all_providers(), highest priority first, the CPU last.
ALL_PROVIDERS = [
    "TensorrtExecutionProvider", "CUDAExecutionProvider", "MIGraphXExecutionProvider",
    "OpenVINOExecutionProvider", "DnnlExecutionProvider", "VitisAIExecutionProvider", "QNNExecutionProvider",
    "NnapiExecutionProvider", "VSINPUExecutionProvider", "JsExecutionProvider", "CoreMLExecutionProvider",
    "DmlExecutionProvider", "RknpuExecutionProvider", "WebNNExecutionProvider", "WebGpuExecutionProvider",
    "XnnpackExecutionProvider", "CANNExecutionProvider", "AzureExecutionProvider", CPU,
]

logger = logging.getLogger("tinyrt")
# onnxruntime's severities: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal
_LOGGING_LEVELS = {0: logging.DEBUG, 1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR, 4: logging.CRITICAL}
_settings = {"severity": 2, "verbosity": 0, "seed": None}


def get_all_providers():
    return list(ALL_PROVIDERS)


def get_available_providers():
    return [CPU]


def get_device():
    return "CPU"


def get_version_string():
    from . import __version__
    return __version__


def get_build_info():
    import platform  # only here: importing tinyrt stays quick on a board
    import numpy
    return "tinyrt Build Info: version=%s, python=%s, numpy=%s, machine=%s" % (
        get_version_string(), platform.python_version(), numpy.__version__, platform.machine())


def set_default_logger_severity(severity):
    """The least severe messages tinyrt logs (0 verbose ... 4 fatal), through the 'tinyrt' logger."""
    if isinstance(severity, bool) or not isinstance(severity, int) or severity not in _LOGGING_LEVELS:
        raise InputError("logger severity is 0 (verbose), 1 (info), 2 (warning), 3 (error) or 4 (fatal), not %r"
                         % (severity,))
    _settings["severity"] = severity
    logger.setLevel(_LOGGING_LEVELS[severity])


def set_default_logger_verbosity(verbosity):
    if isinstance(verbosity, bool) or not isinstance(verbosity, int):
        raise ArgumentTypeError("logger verbosity is an int, not %r" % (verbosity,))
    _settings["verbosity"] = verbosity


def set_seed(seed):
    """Kept for scripts that call it: tinyrt has no random ops (it refuses RandomNormal & co. at load)."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ArgumentTypeError("the seed is an int, not %r" % (seed,))
    _settings["seed"] = seed


def enable_telemetry_events():
    """tinyrt sends nothing anywhere; accepted for compatibility."""


def disable_telemetry_events():
    """tinyrt sends nothing anywhere; accepted for compatibility."""


def check_and_normalize_provider_args(providers, provider_options, available_provider_names):
    """``providers`` / ``provider_options`` as onnxruntime reads them: (names, options dicts of strings).

    ``providers`` holds names or (name, options) pairs; ``provider_options`` (not together with pairs) is
    one dict a provider. Names not available warn; a repeated name warns and is dropped.
    """
    if providers is None:
        return [], []
    chosen = collections.OrderedDict()

    def add(name, options):
        if name not in available_provider_names:
            warnings.warn("provider %r is not available here; available: %s"
                          % (name, ", ".join(available_provider_names)))
        if name in chosen:
            warnings.warn("provider %r given twice; the first is kept" % name)
            return
        chosen[name] = {str(k): str(v) for k, v in options.items()}

    if not isinstance(providers, collections.abc.Sequence) or isinstance(providers, str):
        raise InputError("providers is a list of names or (name, options) pairs, not %r" % (providers,))
    if provider_options is not None:
        if not isinstance(provider_options, collections.abc.Sequence) or isinstance(provider_options, str):
            raise InputError("provider_options is a list of dicts, not %r" % (provider_options,))
        if len(providers) != len(provider_options):
            raise InputError("providers (%d) and provider_options (%d) must be as long as each other"
                             % (len(providers), len(provider_options)))
        if not all(isinstance(p, str) for p in providers):
            raise InputError("with provider_options, providers must be plain names")
        if not all(isinstance(o, dict) for o in provider_options):
            raise InputError("provider_options must be dicts")
        for name, options in zip(providers, provider_options):
            add(name, options)
    else:
        for p in providers:
            if isinstance(p, str):
                add(p, {})
            elif isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) and isinstance(p[1], dict):
                add(p[0], p[1])
            else:
                raise InputError("a provider is a name or a (name, options dict) pair, not %r" % (p,))
    return list(chosen), list(chosen.values())


def choose_providers(providers, provider_options, strict):
    """The providers a session runs with (always the CPU) and their options, from what the caller asked.

    ``strict`` (set_providers): a name onnxruntime does not know is an OptionError. Known providers other
    than the CPU warn (via check_and_normalize_provider_args) and fall back to the CPU, as onnxruntime does
    when they are not built in.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one clearer warning below instead
        names, options = check_and_normalize_provider_args(providers, provider_options, ALL_PROVIDERS)
    unknown = [n for n in names if n not in ALL_PROVIDERS]
    if unknown and strict:
        raise OptionError("Unknown Provider Type: %s (tinyrt runs on %s; onnxruntime's provider names are "
                          "accepted)" % (unknown[0], CPU))
    others = [n for n in names if n != CPU]
    if others:
        warnings.warn("tinyrt runs on the CPU only: %s not used, %s is" % (", ".join(others), CPU))
    cpu_options = options[names.index(CPU)] if CPU in names else {}
    return [CPU], {CPU: cpu_options}


class _CallbackHandler(logging.Handler):
    """Hands each record of the 'tinyrt' logger to a callback with onnxruntime's logging callback arguments:
    (severity, category, logid, code_location, message)."""

    def __init__(self, callback):
        super().__init__()
        self.callback = callback

    def emit(self, record):
        severity = {logging.DEBUG: 0, logging.INFO: 1, logging.WARNING: 2, logging.ERROR: 3}.get(record.levelno, 4)
        try:
            self.callback(severity, "tinyrt", getattr(record, "logid", ""), "%s:%d" % (record.module, record.lineno),
                          record.getMessage())
        except Exception:  # a failing callback must not break the run that logged
            pass


def set_default_logger_callback(callback, severity=2):
    """Send tinyrt's log messages of at least ``severity`` (0 verbose ... 4 fatal) to ``callback``;
    None goes back to Python's logging as configured."""
    if callback is not None and not callable(callback):
        raise OptionError("the logger callback must be callable, not %r" % (callback,))
    if isinstance(severity, bool) or not isinstance(severity, int) or severity not in _LOGGING_LEVELS:
        raise OptionError("logger severity is 0 (verbose), 1 (info), 2 (warning), 3 (error) or 4 (fatal), not %r"
                          % (severity,))
    for handler in [h for h in logger.handlers if isinstance(h, _CallbackHandler)]:
        logger.removeHandler(handler)
    if callback is not None:
        logger.addHandler(_CallbackHandler(callback))
        set_default_logger_severity(severity)
