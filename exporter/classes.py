"""Class names: from a class file, else the checkpoint's meta, else ``class_0 .. class_{N-1}``."""
import warnings

from .errors import ClassesError


class ExporterWarning(UserWarning):
    """Something the user should know but that does not stop the export (e.g. made-up class names)."""


MAX_CLASS_FILE_BYTES = 16 << 20


def read_class_file(path):
    """Class names from a UTF-8 text file, one a line; blank lines are ignored, surrounding spaces stripped.

    A UTF-8 byte-order mark (Windows Notepad writes one) is dropped, so Chinese names work from any editor.
    """
    import os
    from tinyrt.files import read_regular
    if not os.path.lexists(path):
        raise ClassesError("class file %s does not exist" % path)
    # a regular file of at most 16 MB (a FIFO would block, /dev/zero never end)
    raw = read_regular(path, "class file", MAX_CLASS_FILE_BYTES, ClassesError)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ClassesError("class file %s is not UTF-8 text (%s); save it as UTF-8" % (path, e.reason))
    names = [line.strip() for line in text.splitlines()]
    names = [n for n in names if n]
    if not names:
        raise ClassesError("class file %s has no class names (one name a line)" % path)
    return names


def resolve_classes(num_classes=None, class_path=None, meta_classes=None, checkpoint_classes=None):
    """Return ``(class_names, source)``; ``num_classes`` may be None (then the names decide).

    Precedence: ``class_path`` > the checkpoint's meta (``meta_classes``) > ``class_0..N-1`` (with a
    warning). ``checkpoint_classes`` is the class count the checkpoint's weights imply (or None). Any
    count that disagrees with ``num_classes`` is a ClassesError naming both counts.
    """
    if class_path is not None:
        names, source = read_class_file(class_path), "class file %s" % class_path
    elif meta_classes:
        names, source = [str(c) for c in meta_classes], "the checkpoint's meta"
    else:
        names, source = None, None

    if names is not None and num_classes is not None and len(names) != num_classes:
        raise ClassesError("%s lists %d classes but num_classes is %d; make them agree"
                           % (source, len(names), num_classes))
    if num_classes is None:
        num_classes = len(names) if names is not None else checkpoint_classes
    if num_classes is None:
        raise ClassesError("the number of classes is unknown: set num_classes or give a class file")
    if checkpoint_classes is not None and checkpoint_classes != num_classes:
        what = ("%s lists %d classes" % (source, num_classes)) if names is not None and source else \
            ("num_classes is %d" % num_classes)
        raise ClassesError("%s but the checkpoint's classifier has %d classes" % (what, checkpoint_classes))
    if names is None:
        names = ["class_%d" % i for i in range(num_classes)]
        source = "made up"
        warnings.warn("no class names (no class file and none in the checkpoint): using class_0..class_%d; "
                      "pass class_path to name them" % (num_classes - 1), ExporterWarning, stacklevel=3)
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        warnings.warn("class names repeat: %s" % ", ".join(dup), ExporterWarning, stacklevel=3)
    return names, source
