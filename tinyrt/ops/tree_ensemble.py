"""TreeEnsembleClassifier (domain ai.onnx.ml): the decision-tree models scikit-learn exports go through.

Each tree is walked from its root (node id 0) for every row of X [N, F]: at a BRANCH_* node the row's
feature ``nodes_featureids`` is compared with ``nodes_values`` (x < v for BRANCH_LT, <=, >, >=, ==, !=;
a NaN feature goes the ``nodes_missing_value_tracks_true`` way), until a LEAF. Every (tree, leaf) entry of
``class_*`` adds its weight to its class's score; then ``base_values`` are added and ``post_transform``
(NONE, SOFTMAX or LOGISTIC; SOFTMAX_ZERO and PROBIT are refused) is applied. Y is the label of the best score.

Binary models often carry weights for one class only (class id 0, two labels): the score s is then the
second class's, and Z is [1 - s, s] ([-s, s] for mixed-sign weights without a transform; with LOGISTIC,
[sigmoid(-s), sigmoid(s)]), as onnxruntime writes it. Other two-class layouts are refused at load (see
_check): onnxruntime's rules for them were not checked here.
"""
import numpy as np

from ..errors import InputError, ModelError, UnsupportedError
from .registry import op

_COMPARE = {
    "BRANCH_LT": np.less, "BRANCH_LEQ": np.less_equal, "BRANCH_GT": np.greater, "BRANCH_GTE": np.greater_equal,
    "BRANCH_EQ": np.equal, "BRANCH_NEQ": np.not_equal,
}
_TRANSFORMS = ("NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT")


def _check(**a):
    for name in ("base_values_as_tensor", "class_weights_as_tensor", "nodes_values_as_tensor",
                 "nodes_hitrates_as_tensor"):
        if a.get(name) is not None:
            raise UnsupportedError("TreeEnsembleClassifier: attribute %s is not supported (give the float list "
                                   "attribute instead)" % name)
    if a.get("post_transform", "NONE") not in _TRANSFORMS:
        raise ModelError("TreeEnsembleClassifier: post_transform %r is not one of %s"
                         % (a.get("post_transform"), ", ".join(_TRANSFORMS)))
    modes = a.get("nodes_modes") or []
    unknown = sorted(set(modes) - set(_COMPARE) - {"LEAF"})
    if unknown:
        raise ModelError("TreeEnsembleClassifier: unknown node modes %s" % unknown)
    labels = a.get("classlabels_int64s") if a.get("classlabels_int64s") is not None else a.get("classlabels_strings")
    if (a.get("classlabels_int64s") is None) == (a.get("classlabels_strings") is None):
        raise ModelError("TreeEnsembleClassifier: exactly one of classlabels_int64s, classlabels_strings is given")
    transform = a.get("post_transform", "NONE")
    if len(labels) == 2:
        # onnxruntime's two-class rules (which class gets the base value, scores of classes no leaf reached)
        # are checked here for one weight column with NONE or LOGISTIC only: refuse the rest, not guess
        if set(a.get("class_ids") or []) - {0} or len(a.get("base_values") or []) > 1 or \
                transform not in ("NONE", "LOGISTIC"):
            raise UnsupportedError("TreeEnsembleClassifier with two classes: tinyrt supports weights for one "
                                   "class (class_ids all 0), at most one base value and post_transform NONE or "
                                   "LOGISTIC")
    elif transform not in ("NONE", "SOFTMAX", "LOGISTIC"):
        raise UnsupportedError("TreeEnsembleClassifier: post_transform %s is not supported (NONE, SOFTMAX, "
                               "LOGISTIC are)" % transform)


class _Trees:
    """The nodes of every tree, by (tree id, node id)."""

    def __init__(self, treeids, nodeids, featureids, values, modes, true_ids, false_ids, missing_true):
        n = len(nodeids)
        if not all(len(v) == n for v in (treeids, featureids, values, modes, true_ids, false_ids)):
            raise ModelError("TreeEnsembleClassifier: the nodes_* attributes differ in length")
        self.nodes = {}
        for i in range(n):
            self.nodes[(treeids[i], nodeids[i])] = (modes[i], featureids[i], values[i], true_ids[i], false_ids[i],
                                                     bool(missing_true[i]) if i < len(missing_true) else False)
        self.roots = sorted({t for t in treeids})

    def leaves(self, row):
        """(tree id, leaf node id) reached by ``row`` in every tree."""
        out = []
        for tree in self.roots:
            node = 0
            for _ in range(len(self.nodes) + 1):     # a malformed tree could loop: at most every node once
                mode, feature, value, yes, no, missing = self.nodes[(tree, node)]
                if mode == "LEAF":
                    break
                x = row[feature]
                go_true = missing if x != x else bool(_COMPARE[mode](x, value))
                node = yes if go_true else no
            else:
                raise InputError("TreeEnsembleClassifier: tree %d has a cycle" % tree)
            out.append((tree, node))
        return out


@op("TreeEnsembleClassifier", 1, 3, 5, domain="ai.onnx.ml", check=_check)
def tree_ensemble_classifier(X, *, base_values=None, base_values_as_tensor=None, class_ids=None,
                             class_nodeids=None, class_treeids=None, class_weights=None,
                             class_weights_as_tensor=None, classlabels_int64s=None, classlabels_strings=None,
                             nodes_falsenodeids=None, nodes_featureids=None, nodes_hitrates=None,
                             nodes_hitrates_as_tensor=None, nodes_missing_value_tracks_true=None, nodes_modes=None,
                             nodes_nodeids=None, nodes_treeids=None, nodes_truenodeids=None, nodes_values=None,
                             nodes_values_as_tensor=None, post_transform="NONE"):
    labels = list(classlabels_int64s) if classlabels_int64s is not None else list(classlabels_strings)
    trees = _Trees(nodes_treeids or [], nodes_nodeids or [], nodes_featureids or [], nodes_values or [],
                   nodes_modes or [], nodes_truenodeids or [], nodes_falsenodeids or [],
                   nodes_missing_value_tracks_true or [])
    weights = {}
    for tree, node, cls, w in zip(class_treeids or [], class_nodeids or [], class_ids or [], class_weights or []):
        weights.setdefault((tree, node), []).append((cls, w))
    classes = len(labels)
    used = set(class_ids or [])
    binary_one_column = classes == 2 and used <= {0}
    all_positive = all(w >= 0 for w in class_weights or [])
    x = np.asarray(X, dtype=np.float64).reshape(X.shape[0] if X.ndim > 1 else 1, -1)
    scores = np.zeros((x.shape[0], classes), dtype=np.float64)
    for r in range(x.shape[0]):
        for leaf in trees.leaves(x[r]):
            for cls, w in weights.get(leaf, ()):
                scores[r, cls] += w
    base = list(base_values or [])
    if binary_one_column:
        return _binary(scores[:, 0] + (base[0] if base else 0.0), labels, all_positive, post_transform,
                       classlabels_int64s is not None)
    if len(base) == classes:
        scores += np.asarray(base, dtype=np.float64)
    elif len(base) == 1 and classes == 2:   # onnxruntime adds a single base value to the first class only
        scores[:, 0] += base[0]
    elif base:
        raise ModelError("TreeEnsembleClassifier: %d base_values for %d classes" % (len(base), classes))
    y = [labels[i] for i in np.argmax(scores, axis=1)]
    return _labels(y, classlabels_int64s is not None), _transform(scores, post_transform).astype(np.float32)


def _binary(s, labels, all_positive, post_transform, int_labels):
    if all_positive:
        y = [labels[1] if v > 0.5 else labels[0] for v in s]
    else:
        y = [labels[1] if v > 0 else labels[0] for v in s]
    if post_transform == "LOGISTIC":
        z = np.stack([_sigmoid(-s), _sigmoid(s)], axis=1)
    else:  # NONE
        z = np.stack([1.0 - s, s] if all_positive else [-s, s], axis=1)
    return _labels(y, int_labels), z.astype(np.float32)


def _labels(y, int_labels):
    return np.array(y, dtype=np.int64) if int_labels else np.array(y, dtype=object)


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _transform(scores, kind):
    if kind == "NONE":
        return scores
    if kind == "LOGISTIC":
        return _sigmoid(scores)
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))     # SOFTMAX
    return shifted / shifted.sum(axis=1, keepdims=True)
