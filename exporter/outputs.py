"""Writing convert()'s two files whole or not at all: the output paths, the sample script a convert may
replace, the parts written under temporary names in the output folder (with the writer's process id, so a
later convert removes the parts of one that was killed), and the renames at the very end."""
import os
import tempfile

from .errors import ExporterError
from .sample_script import is_sample_script


def out_paths(out_file):
    if not out_file:
        raise ExporterError("out_file is required, e.g. out_file='out/catdog.onnx'")
    out_file = os.fspath(out_file)
    if not out_file.lower().endswith(".onnx"):
        out_file += ".onnx"
    folder = os.path.dirname(os.path.abspath(out_file))
    stem = os.path.splitext(os.path.basename(out_file))[0]
    return os.path.abspath(out_file), os.path.join(folder, stem + ".py"), folder, stem


def check_script_path(script_path, force):
    """Refuse to replace a .py that is not one of our sample scripts (``--out train.onnx`` next to train.py)."""
    if os.path.lexists(script_path) and not force and not is_sample_script(script_path):
        raise ExporterError("%s exists and is not a sample script the exporter wrote; the sample script would "
                            "replace it. Choose another --out name, or pass --force (force=True) to replace it"
                            % script_path)


def _temp_name(folder, stem, suffix):
    # the writer's process id in the name: a later convert removes the parts of a writer that died (kill -9)
    _remove_stale_parts(folder, stem)
    fd, path = tempfile.mkstemp(prefix=".%s.%d." % (stem, os.getpid()), suffix=suffix + ".part", dir=folder)
    os.close(fd)
    umask = os.umask(0)   # mkstemp makes the file private (0600); give it the mode open() would
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
    return path


def _remove_stale_parts(folder, stem):
    """Remove ``.<stem>.<pid>.*.part`` files whose writer process no longer runs."""
    prefix = "." + stem + "."
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".part")):
            continue
        pid = name[len(prefix):].split(".", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            remove(os.path.join(folder, name))


def _running(pid):
    if pid == os.getpid() or os.name != "posix":  # on Windows os.kill(pid, 0) would end that process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process, or a system that cannot tell: leave its files alone
    return True


def remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def shown_path(path):
    try:
        rel = os.path.relpath(path)
        return rel if not rel.startswith("..") else path
    except ValueError:
        return path


def temp_names(folder, stem):
    """The .onnx and .py parts, created in the output folder (so the final renames cannot cross devices)."""
    try:
        os.makedirs(folder, exist_ok=True)
        tmp_onnx = _temp_name(folder, stem, ".onnx")
        try:
            return tmp_onnx, _temp_name(folder, stem, ".py")
        except OSError:
            remove(tmp_onnx)
            raise
    except OSError as e:
        raise ExporterError("cannot write into the output folder %s: %s; choose a folder you can write to"
                            % (folder, e.strerror or e)) from None


def publish(tmp_onnx, onnx_path, tmp_py, script_path):
    """Both parts under their final names, or neither."""
    try:
        os.replace(tmp_onnx, onnx_path)
    except OSError as e:
        raise ExporterError("cannot write %s: %s" % (onnx_path, e.strerror or e)) from None
    try:
        os.replace(tmp_py, script_path)
    except BaseException as e:
        remove(onnx_path)
        if isinstance(e, OSError):
            raise ExporterError("cannot write %s: %s" % (script_path, e.strerror or e)) from None
        raise
