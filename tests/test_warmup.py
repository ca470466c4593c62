"""Compiling the kernels is never a silent pause: ``kernels/_jit.py``'s progress lines, ``TINYRT_QUIET``, a
session's ``log_severity_level``, ``tinyrt warmup``; and ``kernels/_target.py``'s view of the machine."""
import os
import subprocess
import sys

import pytest

pytest.importorskip("numba")
import kernels  # noqa: E402
from kernels import _jit, _target  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_progress_lines(capsys, monkeypatch):
    monkeypatch.delenv("TINYRT_QUIET", raising=False)
    p = _jit.Progress()
    p.begin("conv.pointwise")
    p.end()
    p.begin("conv.depthwise")
    p.end()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3
    assert "compiling the numba kernels" in err[0] and kernels.cache_folder() in err[0]
    assert "TINYRT_QUIET=1" in err[0] and "tinyrt warmup" in err[0]
    assert "conv.pointwise" in err[1] and err[1].endswith(" s in all)")
    assert "conv.depthwise" in err[2]
    assert [name for name, _ in p.compiled] == ["conv.pointwise", "conv.depthwise"]


def test_progress_failed_compile_closes_its_line(capsys, monkeypatch):
    monkeypatch.delenv("TINYRT_QUIET", raising=False)
    p = _jit.Progress()
    p.begin("conv.im2col")   # no end(): numba raised
    p.begin("pool.max_pool")
    p.end()
    err = capsys.readouterr().err.splitlines()
    assert "conv.im2col" in err[1] and err[1].endswith("failed")
    assert "pool.max_pool" in err[2]


def test_progress_kernel_that_calls_kernels(capsys, monkeypatch):
    """segment.run compiles the conv kernels it calls inside its own compile: its line says so and comes back."""
    monkeypatch.delenv("TINYRT_QUIET", raising=False)
    kernels.load()  # (imports kernels/segment.py, whose run is marked as calling kernels)
    p = _jit.Progress()
    p.begin("segment.run")
    p.begin("conv.im2col")
    p.end()
    p.end()
    err = capsys.readouterr().err.splitlines()
    assert "segment.run" in err[1] and err[1].endswith("first the kernels it calls:")
    assert "conv.im2col" in err[2] and err[2].endswith(" s in all)")
    assert "segment.run" in err[3] and err[3].endswith(" s in all)")
    assert [name for name, _ in p.compiled] == ["conv.im2col", "segment.run"]


@pytest.mark.parametrize("how", ["env", "session"])
def test_progress_quiet(capsys, monkeypatch, how):
    if how == "env":
        monkeypatch.setenv("TINYRT_QUIET", "1")
    p = _jit.Progress()
    p.quiet = how == "session"
    p.begin("conv.pointwise")
    p.end()
    assert capsys.readouterr().err == ""
    assert len(p.compiled) == 1  # still counted


def test_session_log_severity_silences_runs():
    """``SessionOptions.log_severity_level`` >= 3 (errors only) silences the lines during that session's runs."""
    from tinyrt import SessionOptions, kernels_select
    opts = SessionOptions()
    opts.kernels = "numba"
    loud, quiet = kernels_select.choose(opts), None
    opts.log_severity_level = 3
    quiet = kernels_select.choose(opts)
    progress = kernels.load()._jit.PROGRESS
    with loud.running(1):
        assert not progress.quiet
    with quiet.running(1):
        assert progress.quiet
    assert not progress.quiet


def test_arm_features_from_hwcaps():
    # qemu-arm's default CPU: NEON, VFPv3/v4, 32 double registers, integer division
    assert _target.arm_features(0x1fb0d7, "armv7l") == "+v7,+db,+neon,+vfp4,+hwdiv-arm"
    # an ARMv7 without NEON and with 16 double registers (vfpv3-d16, Debian armhf's floor): no vfp4 claimed
    assert _target.arm_features((1 << 6) | (1 << 13) | (1 << 14) | (1 << 16), "armv7l") == "+v7,+db"
    assert _target.arm_features(0x1fb0d7, "armv8l") == "+v7,+db,+neon,+vfp4,+hwdiv-arm"
    assert _target.arm_features(0x1fb0d7, "armv6l") == ""  # not ARMv7: left to LLVM


def test_configure_import_hands_features_to_numbas_import(monkeypatch):
    """On 32-bit Arm with a CPU LLVM does not name, before numba's first import: NUMBA_CPU_FEATURES is set
    for numba to read (numba 0.52 fixes its target while importing); never over the user's setting, never
    once numba is imported, never elsewhere."""
    monkeypatch.setattr(_target, "_configured", None)
    monkeypatch.setattr(_target, "_unnamed_cpu_features", lambda: "+v7,+db,+neon")
    monkeypatch.delenv("NUMBA_CPU_FEATURES", raising=False)
    monkeypatch.delenv("NUMBA_CPU_NAME", raising=False)
    assert _target.configure_import() is None  # numba is imported in this process already
    monkeypatch.delitem(sys.modules, "numba", raising=False)
    if not _target.ARM32:
        assert _target.configure_import() is None and "NUMBA_CPU_FEATURES" not in os.environ
        monkeypatch.setattr(_target, "ARM32", True)
    monkeypatch.setenv("NUMBA_CPU_NAME", "cortex-a7")  # the user's choice stands
    assert _target.configure_import() is None and "NUMBA_CPU_FEATURES" not in os.environ
    monkeypatch.delenv("NUMBA_CPU_NAME")
    assert _target.configure_import() == "+v7,+db,+neon"
    assert os.environ["NUMBA_CPU_FEATURES"] == "+v7,+db,+neon"
    assert _target.configure() == "+v7,+db,+neon"  # reported as configured by machine()
    assert _target.configure_import() is None  # set already


def test_machine_here():
    m = _target.machine()
    assert m.atomics
    assert m.configured is None  # only 32-bit Arm is configured
    import llvmlite.binding as llvm
    if m.triple.startswith("x86_64"):
        assert m.fma == bool(llvm.get_host_cpu_features().get("fma"))


@pytest.mark.slow  # compiles every kernel into an empty cache (about 10-20 s)
def test_warmup_compiles_every_kernel(tmp_path):
    """``python -m tinyrt warmup`` with an empty cache: one line saying what and where, a line per kernel,
    and afterwards every kernel compiled; a second run finds them cached and compiles nothing."""
    env = dict(os.environ, TINYRT_CACHE_DIR=str(tmp_path), TINYRT_QUIET="")
    check = ("import sys, kernels\n"
             "from tinyrt.cli import main\n"
             "assert main(['warmup']) == 0\n"
             "k = kernels.load()\n"
             "for module in (k.conv, k.stem, k.pool, k.eltwise, k.detection, k.qgemm, k.channels, k.segment):\n"
             "    for name, f in vars(module).items():\n"
             "        if isinstance(getattr(f, '_cache', None), kernels._jit._AnnouncedCache) and \\\n"
             "                f.py_func.__module__ == module.__name__:  # (not the kernels it imports)\n"
             "            print('KERNEL', module.__name__.split('.')[-1] + '.' + name, len(f.signatures))\n")
    first = subprocess.run([sys.executable, "-c", check], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=1800)
    assert first.returncode == 0, first.stderr[-3000:]
    compiled = dict(line.split()[1:] for line in first.stdout.splitlines() if line.startswith("KERNEL "))
    assert len(compiled) >= 11, compiled
    assert all(int(n) >= 1 for n in compiled.values()), compiled  # every kernel compiled
    err = first.stderr
    assert err.count("compiling the numba kernels") == 1 and str(tmp_path) in err
    for name in compiled:
        assert name in err, "no progress line for %s:\n%s" % (name, err)
    assert "tinyrt warmup: compiled %d kernels" % len(compiled) in first.stdout
    second = subprocess.run([sys.executable, "-m", "tinyrt", "warmup"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "nothing to compile" in second.stdout and "compiling" not in second.stderr


def test_warmup_refuses_a_missing_model(tmp_path):
    out = subprocess.run([sys.executable, "-m", "tinyrt", "warmup", str(tmp_path / "nope.onnx")], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 2 and "no such model file" in out.stderr


def test_process_default_severity_silences_runs():
    """A session at log_severity_level -1 follows ``tinyrt.set_default_logger_severity``."""
    import tinyrt
    from tinyrt import SessionOptions, kernels_select
    from tinyrt.environment import _settings
    opts = SessionOptions()
    opts.kernels = "numba"
    before = _settings.get("severity", 2)
    try:
        tinyrt.set_default_logger_severity(3)
        assert kernels_select.choose(opts).quiet
        tinyrt.set_default_logger_severity(2)
        assert not kernels_select.choose(opts).quiet
    finally:
        tinyrt.set_default_logger_severity(before)
