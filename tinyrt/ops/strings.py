"""String ops. tinyrt holds ONNX string tensors as numpy object arrays of Python str (tinyrt/dtypes.py).

    StringConcat(x, y)        x + y, element by element, with broadcasting
    StringSplit(x)            each string cut at `delimiter` (default: runs of whitespace, like str.split()),
                              at most `maxsplit` cuts; y holds the pieces padded with "" to the longest
                              count, z the count of each
    RegexFullMatch(x)         whether the whole string matches `pattern`
    StringNormalizer(x)       drop the `stopwords` (case-insensitively unless is_case_sensitive), then
                              change the case ("LOWER", "UPPER" or "NONE"); x is [C] or [1, C]

Identity, Reshape, Concat, Gather, Equal and the other ops that only move elements work on string tensors
as they are. RegexFullMatch uses Python's `re`, which agrees with ONNX's RE2 syntax on the common patterns
(RE2 lacks backreferences and lookaround, so a pattern valid for RE2 means the same here).
"""
import re

import numpy as np

from .. import limits
from ..errors import InputError, ModelError, UnsupportedError
from .registry import op


def _strings(shape):
    return np.empty(shape, dtype=object)


@op("StringConcat", 20)
def string_concat(x, y):
    limits.check_broadcast("StringConcat", x, y)
    out = np.add(x.astype(object), y.astype(object))   # Python's str + str, broadcast by numpy
    return out if isinstance(out, np.ndarray) else np.array(out, dtype=object)


@op("StringSplit", 20)
def string_split(x, *, delimiter=None, maxsplit=None):
    sep = delimiter or None                  # unset or "": split at runs of whitespace
    limit = -1 if maxsplit is None else int(maxsplit)
    pieces = [s.split(sep, limit) for s in x.reshape(-1).tolist()]
    width = max([len(p) for p in pieces] or [0])
    y = _strings((len(pieces), width))
    y[...] = ""
    for i, p in enumerate(pieces):
        y[i, :len(p)] = p
    z = np.array([len(p) for p in pieces], dtype=np.int64)
    return y.reshape(x.shape + (width,)), z.reshape(x.shape)


def _check_pattern(*, pattern=None):
    if pattern is None:
        raise ModelError("RegexFullMatch: the pattern attribute is missing")
    try:
        re.compile(pattern)
    except re.error as e:
        raise UnsupportedError("RegexFullMatch: pattern %r is not one tinyrt (Python's re) reads: %s"
                               % (pattern, e)) from None


@op("RegexFullMatch", 20, check=_check_pattern)
def regex_full_match(x, *, pattern=None):
    compiled = re.compile(pattern)
    flat = [compiled.fullmatch(s) is not None for s in x.reshape(-1).tolist()]
    return np.array(flat, dtype=np.bool_).reshape(x.shape)


def _check_normalizer(*, case_change_action="NONE", is_case_sensitive=0, locale="", stopwords=None):
    if case_change_action not in ("NONE", "LOWER", "UPPER"):
        raise ModelError("StringNormalizer: case_change_action is NONE, LOWER or UPPER, not %r" % case_change_action)


@op("StringNormalizer", 10, check=_check_normalizer)
def string_normalizer(x, *, case_change_action="NONE", is_case_sensitive=0, locale="", stopwords=None):
    # locale only changes case rules beyond Unicode's defaults (e.g. Turkish dotted i); Python's lower()
    # and upper() follow the defaults, as onnxruntime does for the locales it ships.
    if x.ndim == 2 and x.shape[0] == 1:
        words, as_row = x.reshape(-1).tolist(), True
    elif x.ndim == 1:
        words, as_row = x.tolist(), False
    else:
        raise InputError("StringNormalizer: the input is [C] or [1, C], not %s" % list(x.shape))
    stop = set(stopwords or ())
    if is_case_sensitive:
        kept = [w for w in words if w not in stop]
    else:
        stop = {s.lower() for s in stop}
        kept = [w for w in words if w.lower() not in stop]
    if case_change_action == "LOWER":
        kept = [w.lower() for w in kept]
    elif case_change_action == "UPPER":
        kept = [w.upper() for w in kept]
    if not kept:
        kept = [""]          # onnxruntime's answer when every word was a stopword
    out = np.array(kept, dtype=object)
    return out.reshape(1, -1) if as_row else out
