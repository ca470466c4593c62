"""Running an attack in a child process with a time limit and a memory (address space) limit, so a
regression (a hang, a blow-up, a crash) fails its test instead of taking the test run down."""
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_bounded(code, timeout=120, memory_mb=1536, env=None):
    """Run ``code`` (Python source) in a fresh interpreter under RLIMIT_AS ``memory_mb`` and ``timeout``
    seconds. Returns the CompletedProcess (stdout/stderr as text); a timeout is a subprocess.TimeoutExpired.

    The child imports tinyrt from this worktree and inherits TINYRT_KERNELS, so it runs on the path
    the suite runs on.
    """
    def limit():
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))

    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = ROOT + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env["OPENBLAS_NUM_THREADS"] = "1"  # BLAS reserves address space per thread; keep the limit meaningful
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, preexec_fn=limit, cwd=ROOT, env=full_env)


def check_bounded(code, timeout=120, memory_mb=1536, env=None):
    """``run_bounded``, asserting the child exited cleanly; returns its stdout."""
    done = run_bounded(code, timeout, memory_mb, env)
    assert done.returncode == 0, "child failed (rc %s):\n%s\n%s" % (done.returncode, done.stdout, done.stderr[-3000:])
    return done.stdout
