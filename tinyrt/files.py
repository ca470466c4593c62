"""Reading and writing files a model or a caller names, without being tricked or leaving a mess.

Reading: a path may name a FIFO (opening it for reading blocks until someone writes), a device
(``/dev/zero`` never ends), a folder, or a link swapped in between a check and the ``open``. So
``open_regular`` opens without blocking (O_NONBLOCK), looks at what it got through the descriptor
(``fstat``: a regular file, or an error naming the path), and ``read_regular`` refuses a file bigger than
its caller's limit *before* reading it.

Writing: ``atomic_write`` writes a temporary file in the target's folder and renames it over the target
(``os.replace``), so a failure or a kill half-way leaves the old file (or none), never a truncated one.
"""
import errno
import os
import stat
import tempfile

from .errors import InputError

_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


def open_regular(path, what, error=InputError, nofollow=False):
    """(binary file object, os.stat_result) of the regular file at ``path``; ``error`` otherwise.

    ``what`` names the file in messages ("model file", "picture", ...). ``nofollow``: refuse a symbolic
    link as the last part of the path (where the caller resolved links itself and checked the result).
    """
    flags = _READ_FLAGS | (getattr(os, "O_NOFOLLOW", 0) if nofollow else 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if e.errno == errno.ENOENT:
            raise error("cannot read %s %r: it does not exist" % (what, os.fspath(path))) from None
        if nofollow and e.errno == errno.ELOOP:
            raise error("cannot read %s %r: it is a symbolic link (swapped in while loading?)"
                        % (what, os.fspath(path))) from None
        raise error("cannot read %s %r: %s" % (what, os.fspath(path), e.strerror or e)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error("cannot read %s %r: it is not a regular file (%s)" % (what, os.fspath(path), _kind(st.st_mode)))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)  # a regular file: reads never block, and Python's file wants blocking
        return os.fdopen(fd, "rb"), st
    except BaseException:
        os.close(fd)
        raise


def read_regular(path, what, limit, error=InputError):
    """The bytes of the regular file at ``path``, refused (before reading) when bigger than ``limit``."""
    f, st = open_regular(path, what, error)
    with f:
        if st.st_size > limit:
            raise error("cannot read %s %r: it is %d bytes, tinyrt reads at most %d (see docs/limits.md)"
                        % (what, os.fspath(path), st.st_size, limit))
        data = f.read(st.st_size)  # read(n) allocates n bytes at once: the size fstat gave, checked above
        if f.read(1):
            raise error("cannot read %s %r: it grew while being read" % (what, os.fspath(path)))
    return data


def _kind(mode):
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO: reading it would block"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a plain file"


def descriptor_path(f):
    """The real path of an open file (Linux: /proc/self/fd), or None where the system does not say."""
    try:
        return os.readlink("/proc/self/fd/%d" % f.fileno())
    except OSError:
        return None


def atomic_write(path, write, mode="wb"):
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it to ``path``.

    On any error the temporary file is removed and ``path`` is untouched (the old file, or no file).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".part")
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
