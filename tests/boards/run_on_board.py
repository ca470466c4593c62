"""Run a Python script on an emulated board: Debian's Python under qemu-user, with tinyrt copied in.

    python tests/boards/run_on_board.py [--arch armhf|armhf-bookworm|arm64|riscv64] SCRIPT [FILE ...] [-- ARG ...]

builds (once, cached; see make_root.sh) the root for ``--arch``, copies ONLY ``tinyrt/`` and ``kernels/`` (no
pip, no other project file) into a fresh folder beside the root, together with SCRIPT and the FILEs (models,
goldens, images), and runs ``qemu-<arch>-static -L ROOT ROOT/usr/bin/python3 SCRIPT ARG ...`` there, in that
folder, as a student would run a script next to a copied ``tinyrt/`` on a Raspberry Pi. The script's output is
printed and its exit status returned. The folder is deleted afterwards.

The emulated interpreter gets a clean environment (nothing of the host's PYTHONPATH or virtualenv), UTF-8
mode, and ``XDG_CACHE_HOME`` / ``NUMBA_CACHE_DIR`` in the board's cache folder (``<root>/../cache``), so
numba compiles the kernels once across runs.

From Python (the board tests): ``root(arch)`` and ``run(arch, script, files, args)``.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
COPIED = ("tinyrt", "kernels")  # the only project folders a board gets

ARCHES = {
    # board (make_root.sh's BOARD): (Debian arch, suite, qemu binary, what it stands for)
    "armhf": ("armhf", "bullseye", "qemu-arm-static",
              "legacy Raspberry Pi OS 32-bit (bullseye): Python 3.9, numpy 1.19, numba 0.52"),
    "armhf-bookworm": ("armhf", "bookworm", "qemu-arm-static",
                       "Raspberry Pi OS 32-bit (bookworm): Python 3.11, numpy 1.24, numba 0.56"),
    "arm64": ("arm64", "bookworm", "qemu-aarch64-static",
              "64-bit Raspberry Pi OS (bookworm): Python 3.11, numpy 1.24, numba 0.56"),
    "riscv64": ("riscv64", "trixie", "qemu-riscv64-static", "a RISC-V board (trixie): Python 3.13, numpy 2.2"),
}


class BoardError(RuntimeError):
    """The emulated board could not be set up (no qemu, no network for Debian's packages, ...)."""


def cache_dir():
    return os.environ.get("TINYRT_BOARD_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "tinyrt", "boards")


def board_dir(arch):
    return os.path.join(cache_dir(), "%s-%s" % ARCHES[arch][:2])


def root(arch, timeout=1800):
    """The root folder for ``arch``, built by make_root.sh on first use (a few minutes at most), else cached."""
    if arch not in ARCHES:
        raise BoardError("unknown board %r (one of %s)" % (arch, ", ".join(ARCHES)))
    qemu = ARCHES[arch][2]
    if shutil.which(qemu) is None:
        raise BoardError("%s is not installed: apt-get install qemu-user-static (no binfmt needed)" % qemu)
    proc = subprocess.run(["bash", os.path.join(HERE, "make_root.sh"), arch, board_dir(arch)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout)
    if proc.returncode != 0:
        raise BoardError("building the %s root failed (exit %d):\n%s%s"
                         % (arch, proc.returncode, proc.stdout, proc.stderr))
    path = proc.stdout.strip().splitlines()[-1]
    if not os.path.isfile(os.path.join(path, "usr", "bin", "python3")):
        raise BoardError("make_root.sh printed %r, which holds no usr/bin/python3" % path)
    return path


def _ignore(folder, names):
    return [n for n in names if n == "__pycache__" or n.endswith((".pyc", ".so"))]


# numba keeps a cached function only while its file's stamp (mtime, size) is the one it was compiled from.
# kernels/ caches in a folder named after the digest of its sources (kernels/__init__.py), so the stamp adds
# nothing there; one fixed mtime for the copied files lets every checkout with the same kernels/ (the other
# worktrees, main, a fresh CI clone) use what one of them compiled beside the root, instead of compiling it
# again under emulation.
KERNELS_MTIME = 1000000000


def _same_stamps(folder):
    for name in os.listdir(folder):
        if name.endswith(".py"):
            os.utime(os.path.join(folder, name), (KERNELS_MTIME, KERNELS_MTIME))


class Result:
    def __init__(self, returncode, stdout, stderr, seconds, command):
        self.returncode, self.stdout, self.stderr, self.seconds, self.command = (
            returncode, stdout, stderr, seconds, command)

    def __repr__(self):
        return "<board run: exit %d in %.1f s>" % (self.returncode, self.seconds)


def run(arch, script, files=(), args=(), timeout=1200, env=None):
    """Copy tinyrt/, kernels/, ``script`` and ``files`` into a fresh folder beside the ``arch`` root and run
    ``script args`` there with the root's python3 under qemu. Returns a :class:`Result`.

    ``files`` are host paths, copied by basename. ``env`` adds variables to the (clean) environment.
    """
    rootdir = root(arch)
    work = os.path.join(os.path.dirname(rootdir), "work")
    os.makedirs(work, exist_ok=True)
    folder = tempfile.mkdtemp(prefix="run-", dir=work)
    try:
        for name in COPIED:
            shutil.copytree(os.path.join(REPO, name), os.path.join(folder, name), ignore=_ignore)
        _same_stamps(os.path.join(folder, "kernels"))
        for f in [script] + list(files):
            shutil.copy(f, os.path.join(folder, os.path.basename(f)))
        # Kept between runs: numba's on-disk cache (kernels/ keeps its own under $XDG_CACHE_HOME/tinyrt/numba,
        # in a folder named after its sources' digest: see _same_stamps).
        cache = os.path.join(os.path.dirname(rootdir), "cache")
        os.makedirs(cache, exist_ok=True)
        clean = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": folder, "PYTHONUTF8": "1",
                 "PYTHONDONTWRITEBYTECODE": "1", "XDG_CACHE_HOME": cache,
                 "NUMBA_CACHE_DIR": os.path.join(cache, "numba")}
        clean.update(env or {})
        command = [ARCHES[arch][2], "-L", rootdir, os.path.join(rootdir, "usr", "bin", "python3"),
                   os.path.basename(script)] + [str(a) for a in args]
        start = time.time()
        with subprocess.Popen(command, cwd=folder, env=clean, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True) as proc:
            with _live_lock:
                _live.add(proc)
                if _stopped:
                    proc.kill()
            try:
                stdout, stderr = proc.communicate(timeout=timeout)
            except BaseException:  # the timeout, or the caller stopping: the emulated interpreter ends too
                proc.kill()
                raise
            finally:
                with _live_lock:
                    _live.discard(proc)
        return Result(proc.returncode, stdout, stderr, time.time() - start, command)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


_live = set()  # the emulated interpreters running now (run() may be called from several threads)
_live_lock = threading.Lock()
_stopped = False


def stop_all():
    """Kill the emulated interpreters that run() started and still run, and any started from now on (their
    run() returns at once): for the end of a test session."""
    global _stopped
    with _live_lock:
        _stopped = True
        procs = list(_live)
    for proc in procs:
        proc.kill()


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="armhf", choices=sorted(ARCHES))
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment variable for the emulated python (repeatable)")
    parser.add_argument("script")
    parser.add_argument("files", nargs="*", help="files copied next to the script (models, goldens, images)")
    a = parser.parse_args(argv)
    env = dict(e.split("=", 1) for e in a.env)
    try:
        result = run(a.arch, a.script, a.files, extra, env=env)
    except BoardError as e:
        print("run_on_board: %s" % e, file=sys.stderr)
        return 3
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    print("run_on_board: %s exited %d after %.1f s" % (a.arch, result.returncode, result.seconds), file=sys.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
