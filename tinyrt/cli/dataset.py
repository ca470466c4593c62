"""Pictures from folders for ``tinyrt run``: every picture below a folder, with the class its folder names.

A classification dataset keeps each class's pictures in a folder named after the class (ImageNet's layout,
and MMEdu's: ``training_set/ val_set/ test_set/``, each with one folder per class, plus ``classes.txt``).
When the folder names are the model's class names, the answers can be scored: accuracy and which classes
were taken for which (a confusion summary).
"""
import os

from ..errors import InputError
from ..vision.image import IMAGE_EXTENSIONS


def collect(paths):
    """[(picture path, the name of the folder it is in, or None for a file given by itself)] for files and
    folders (folders walked recursively, in name order, hidden entries skipped)."""
    found = []
    for path in paths:
        path = os.fspath(path)
        if not os.path.isdir(path):
            found.append((path, None))
            continue
        pictures = []
        for folder, subfolders, files in os.walk(path):
            subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
            for name in sorted(files):
                if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith("."):
                    pictures.append((os.path.join(folder, name), os.path.basename(os.path.abspath(folder))))
        if not pictures:
            raise InputError("the folder %s holds no pictures, nor do its subfolders (%s)"
                             % (path, ", ".join(IMAGE_EXTENSIONS)))
        found.extend(pictures)
    return found


def save_names(pictures):
    """A file name for each picture's drawing in one --save folder, none used twice: the picture's own name,
    or with its folders in front (``circle_0001.jpg``) when two pictures share one."""
    base = [os.path.basename(p) for p, _ in pictures]
    taken, names = set(), []
    for (path, _), name in zip(pictures, base):
        if base.count(name) > 1:
            parts = os.path.normpath(path).split(os.sep)
            name = "_".join(p for p in parts[-3:] if p not in ("", ".", ".."))
        stem, ext = os.path.splitext(name)
        candidate, n = name, 2
        while candidate in taken:
            candidate = "%s_%d%s" % (stem, n, ext)
            n += 1
        taken.add(candidate)
        names.append(candidate)
    return names


def scorable(pictures, classes):
    """True when every picture sits in a class folder and every such folder is one of the model's classes."""
    truths = set(t for _, t in pictures)
    return bool(classes) and None not in truths and truths <= set(classes)


class Score:
    """Accuracy and the confusion counts of a classification run over class folders."""

    def __init__(self, classes):
        self.classes = list(classes)
        self.counts = {}              # (truth, predicted) -> pictures
        self.total = self.correct = 0

    def add(self, truth, predicted):
        self.counts[(truth, predicted)] = self.counts.get((truth, predicted), 0) + 1
        self.total += 1
        self.correct += truth == predicted

    def lines(self):
        if not self.total:
            return ["accuracy: no picture was scored"]
        out = ["accuracy: %d of %d = %.2f%% (top-1; the folder names are the truth)"
               % (self.correct, self.total, 100.0 * self.correct / self.total)]
        used = [c for c in self.classes if any(c in key for key in self.counts)]
        if len(used) <= 12:
            out.extend(self._matrix(used))
        mistakes = sorted(((n, t, p) for (t, p), n in self.counts.items() if t != p), reverse=True)
        if mistakes:
            out.append("most confused: " + ", ".join("%s taken for %s %d" % (t, p, n) for n, t, p in mistakes[:5]))
        return out

    def _matrix(self, used):
        """Rows: the truth; columns: what the model said; and each class's share right (its recall)."""
        width = max([len(c) for c in used] + [5])
        out = ["confusion (rows: the truth, columns: the answer; right: the share of the row answered right):",
               "  " + "".ljust(width) + " ".join(c[:8].rjust(8) for c in used) + "   right"]
        for t in used:
            row = [self.counts.get((t, p), 0) for p in used]
            n = sum(self.counts.get((t, p), 0) for p in self.classes)
            recall = "%6.1f%%" % (100.0 * self.counts.get((t, t), 0) / n) if n else "      -"
            out.append("  " + t.ljust(width) + " ".join(("%d" % v).rjust(8) for v in row) + " " + recall)
        return out
