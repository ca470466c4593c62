"""The machine numba compiles the kernels for, and what its JIT can do there: checked before any kernel
is compiled, because an LLVM error there aborts the whole process (there is no exception to catch). Also
the one thing the kernels' intrinsics need that differs between numba versions (``llvm_function``).

numba's JIT compiles for LLVM's triple of the process, the CPU that LLVM detects and its features. Two
things can go wrong on the small boards tinyrt is for:

* **32-bit Arm, CPU not named.** LLVM finds the CPU in /proc/cpuinfo; under qemu-user (which shows the
  host's /proc/cpuinfo), or on a core that LLVM does not know, it reports ``generic`` with no features.
  With Debian bookworm's LLVM 14, whose triple is a plain ``arm-unknown-linux-gnueabihf``, ``generic``
  means ARMv4T: no ldrex/strex, so the pool's atomics (``_sync.py``), and numba's own reference counts,
  become ``__sync_*`` library calls that the JIT cannot resolve, and the interpreter dies with "LLVM
  ERROR: Symbol not found: __sync_fetch_and_add_4". The Linux kernel knows the CPU better: its hardware capabilities (AT_HWCAP,
  read from /proc/self/auxv; qemu reports the emulated CPU's) say ARMv7 and whether there are NEON,
  VFPv4 (fused multiply-add) and integer division. Those are handed to numba as features (numba's own
  NUMBA_CPU_FEATURES setting, which the user may also set) before numba creates its code generator:
  numba 0.52 creates it while ``import numba`` runs (its typed containers compile at import), so when
  numba is not imported yet ``configure_import`` puts the setting in the environment for the import and
  leaves it there (numba reads its settings again from the environment before each compile; a child
  process on the same CPU gets the same setting); when it is, ``configure`` sets it in numba's config,
  which still works with numba 0.56 (code generator created on first compile). A CPU that LLVM does name
  (a real Pi's cortex-a7/a53/a72) is left as it is.
* **No fused multiply-add** (ARMv7 before VFPv4, x86 before Haswell): LLVM turns every vector fma into
  one ``fmaf`` library call a lane. ``_simd.fma`` then multiplies and adds instead (two roundings).

``machine()`` compiles a small probe with numba's own target machine (10-30 ms; skipped on x86-64 and
aarch64, where atomics are always instructions and the features say whether there is FMA) and returns
what it found; ``kernels.load()`` refuses the kernels (the numpy ops run instead) when the probe's
atomics are library calls after all.
"""
import os
import platform
import struct
import sys

# The Linux kernel's hardware capability bits on 32-bit Arm (arch/arm/include/uapi/asm/hwcap.h).
_HWCAP_NEON, _HWCAP_VFPv4, _HWCAP_IDIVA, _HWCAP_VFPD32 = 1 << 12, 1 << 16, 1 << 17, 1 << 19
_AT_HWCAP = 16

_MACHINE = platform.machine().lower()
ARM32 = _MACHINE.startswith("arm") and _MACHINE != "arm64"  # armv7l, armv8l (32-bit on a 64-bit core)


def _hwcap():
    """AT_HWCAP of this process (0 when unknown)."""
    try:
        with open("/proc/self/auxv", "rb") as f:
            data = f.read()
    except OSError:
        return 0
    word = struct.calcsize("L")
    values = struct.unpack("%dL" % (len(data) // word), data[:len(data) // word * word])
    return dict(zip(values[0::2], values[1::2])).get(_AT_HWCAP, 0)


def arm_features(hwcap, machine=_MACHINE):
    """LLVM features for a 32-bit Arm CPU from its hwcaps ('' when not ARMv7 or later)."""
    if not machine.startswith(("armv7", "armv8")):
        return ""
    features = ["+v7", "+db"]  # ldrex/strex (also ldrexd/strexd for 64 bits) and dmb for the atomics
    if hwcap & _HWCAP_NEON:
        features.append("+neon")
    if hwcap & _HWCAP_VFPv4 and hwcap & (_HWCAP_NEON | _HWCAP_VFPD32):
        features.append("+vfp4")  # fused multiply-add (vfma)
    if hwcap & _HWCAP_IDIVA:
        features.append("+hwdiv-arm")
    return ",".join(features)


_configured = None  # the features configure_import set, if it did


def _unnamed_cpu_features():
    """The hwcaps' features when LLVM does not name this CPU ('' otherwise)."""
    import llvmlite.binding as llvm
    if llvm.get_host_cpu_name() != "generic":
        return ""
    return arm_features(_hwcap())


def configure_import():
    """Before the first ``import numba``, on 32-bit Arm with a CPU that LLVM does not name: set
    NUMBA_CPU_FEATURES in the environment for numba to read (see the module docstring). Does nothing
    elsewhere, once numba is imported, or when the user chose (NUMBA_CPU_NAME / NUMBA_CPU_FEATURES set).
    Returns the features set, or None."""
    global _configured
    if not ARM32 or "numba" in sys.modules or os.environ.get("NUMBA_CPU_NAME") is not None \
            or os.environ.get("NUMBA_CPU_FEATURES") is not None:
        return None
    try:
        features = _unnamed_cpu_features()
    except ImportError:  # no llvmlite, so no numba: the import that follows says so
        return None
    if not features:
        return None
    os.environ["NUMBA_CPU_FEATURES"] = _configured = features
    return features


def configure():
    """On 32-bit Arm with a CPU that LLVM does not name, give numba the kernel's view of it (see the module
    docstring). Does nothing elsewhere, when the user chose (NUMBA_CPU_NAME / NUMBA_CPU_FEATURES), or once
    numba's code generator exists. Returns the features set (here or by ``configure_import``), or None."""
    if not ARM32:
        return None
    if _configured is not None:
        return _configured
    from numba.core import config, registry
    if config.CPU_NAME is not None or config.CPU_FEATURES is not None:
        return None
    if "_toplevel_target_context" in vars(registry.cpu_target):
        return None  # compiled for already: too late to change (machine() still checks what it gives)
    features = _unnamed_cpu_features()
    if not features:
        return None
    config.CPU_FEATURES = features
    return features


class Machine:
    """What numba's JIT makes of the probe: ``atomics`` (lock-free, no library calls), ``fma`` (native)."""

    def __init__(self, triple, cpu, features, atomics, fma, configured):
        self.triple, self.cpu, self.features = triple, cpu, features
        self.atomics, self.fma, self.configured = atomics, fma, configured

    def describe(self):
        return "%s, CPU %s, features %s" % (self.triple, self.cpu or "generic", self.features or "(none)")


_PROBE = """
define i64 @atomics(i64* %p, i64 %v) {
  %a = atomicrmw add i64* %p, i64 %v seq_cst
  %b = atomicrmw xchg i64* %p, i64 %a seq_cst
  %c = load atomic i64, i64* %p seq_cst, align 8
  %d = add i64 %b, %c
  ret i64 %d
}
declare <4 x float> @llvm.fma.v4f32(<4 x float>, <4 x float>, <4 x float>)
define <4 x float> @fused(<4 x float> %a, <4 x float> %b, <4 x float> %c) {
  %r = call <4 x float> @llvm.fma.v4f32(<4 x float> %a, <4 x float> %b, <4 x float> %c)
  ret <4 x float> %r
}
"""

_machine = None


def machine():
    """The target numba's JIT compiles for (configured first, see ``configure``) and what the probe found."""
    global _machine
    if _machine is None:
        import llvmlite.binding as llvm
        from numba.core import registry
        configured = configure()
        codegen = registry.cpu_target.target_context.codegen()  # numba's JIT, created now if not yet
        triple, features = llvm.get_process_triple(), codegen._tm_features
        if triple.startswith(("x86_64", "aarch64", "arm64")):
            atomics, fma = True, not triple.startswith("x86_64") or "+fma" in features.split(",")
        else:
            mod = llvm.parse_assembly(_PROBE.replace("i64*", "ptr") if llvm.llvm_version_info[0] >= 15 else _PROBE)
            mod.triple = triple
            asm = codegen._tm.emit_assembly(mod)
            atomics, fma = "__sync_" not in asm and "__atomic_" not in asm, "fmaf" not in asm
        _machine = Machine(triple, codegen._get_host_cpu_name(), features, atomics, fma, configured)
    return _machine


def llvm_function(module, fnty, name):
    """The function ``name`` of type ``fnty`` declared in the LLVM ``module`` (numba 0.52 has no
    ``cgutils.get_or_insert_function``; llvmlite's module method was its predecessor)."""
    from numba.core import cgutils
    if hasattr(cgutils, "get_or_insert_function"):
        return cgutils.get_or_insert_function(module, fnty, name)
    return module.get_or_insert_function(fnty, name=name)
