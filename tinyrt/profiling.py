"""Profiling like onnxruntime's: a Chrome-trace JSON file per session (chrome://tracing, ui.perfetto.dev).

    so = tinyrt.SessionOptions()
    so.enable_profiling = True                  # so.profile_file_prefix = "mymodel" names the file
    sess = tinyrt.InferenceSession("model.onnx", so)
    sess.run(None, feeds)
    path = sess.end_profiling()                 # "onnxruntime_profile__2026-12-05_09-30-00.json"

The file is a JSON array of complete events (``"ph": "X"``), one a line, times in microseconds since the
session's profiling started: ``model_loading`` and ``session_initialization`` once, then for each run a
``model_run`` event (category "Session") and one event a node (category "Node", named
``<node name>_kernel_time``) whose ``args`` hold the op type, the provider, and the element types and
shapes of what the node read and wrote, as onnxruntime writes them.
"""
import datetime
import json
import os
import threading
import time

import numpy as np

from . import dtypes


class Profiler:
    """Collects a session's events in memory; ``end`` writes them and stops collecting."""

    def __init__(self, prefix, start_ns=None):
        self.prefix = prefix
        self.start_ns = time.monotonic_ns() if start_ns is None else start_ns
        self.events = []
        self.pid = os.getpid()
        self._lock = threading.Lock()  # runs of one session may come from several threads

    def add_session_event(self, name, start_ns, end_ns, args=None):
        """A session-level event (loading, initialising, one run) between two time.monotonic_ns() readings."""
        self._add("Session", name, (start_ns - self.start_ns) // 1000, (end_ns - start_ns) // 1000, args or {})

    def node_hook(self):
        """A ``run_with_hook`` hook that times every node and records what it read and wrote."""
        def hook(step, inputs, compute):
            start = time.monotonic_ns()
            outputs = compute()
            end = time.monotonic_ns()
            node = step.node
            args = {
                "op_name": node.op_type,
                "provider": "CPUExecutionProvider",
                "input_type_shape": [_type_shape(v) for v in inputs if v is not None],
                "output_type_shape": [_type_shape(v) for v in outputs if v is not None],
                "output_size": str(sum(int(v.nbytes) for v in outputs if isinstance(v, np.ndarray))),
            }
            if node.domain:
                args["op_domain"] = node.domain
            name = (node.name or (node.outputs[0] if node.outputs else node.op_type)) + "_kernel_time"
            self._add("Node", name, (start - self.start_ns) // 1000, (end - start) // 1000, args)
            return outputs
        return hook

    def _add(self, category, name, start_us, duration_us, args):
        event = {"cat": category, "pid": self.pid, "tid": threading.get_ident(), "dur": int(duration_us),
                 "ts": int(start_us), "ph": "X", "name": name, "args": args}
        with self._lock:
            self.events.append(event)

    def end(self):
        """Write the events to ``<prefix>_<date>_<time>.json`` in the working folder; returns its path."""
        stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        path = "%s_%s.json" % (self.prefix, stamp)
        n = 1
        while os.path.exists(path):  # two sessions ending in the same second keep both files
            n += 1
            path = "%s_%s_%d.json" % (self.prefix, stamp, n)
        write_trace(path, self.events)
        return path


def write_trace(path, events):
    """Chrome's trace format as onnxruntime writes it: '[', one event a line, ']'."""
    lines = [json.dumps(e, separators=(",", ":")) for e in events]
    with open(path, "w") as f:
        f.write("[\n" + ",\n".join(lines) + "\n]\n")


def _type_shape(value):
    """{element type: shape} of one value, e.g. {"float": [1, 3, 224, 224]}; sequences give a list."""
    if isinstance(value, np.ndarray):
        try:
            name = dtypes.type_name(dtypes.from_numpy(value.dtype))
        except KeyError:
            name = str(value.dtype)
        return {name: [int(d) for d in value.shape]}
    if isinstance(value, list):
        return {"seq": [_type_shape(v) for v in value]}
    return {type(value).__name__: []}
