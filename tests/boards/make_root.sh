#!/bin/bash
# Builds an emulated board root from Debian's packages, once, and caches it; needs no root privileges for the
# root itself and no binfmt: only `qemu-user-static` (apt-get install qemu-user-static) and apt on the host.
#
#   usage: tests/boards/make_root.sh BOARD [DIR]
#     BOARD  armhf           Debian bullseye armhf = legacy Raspberry Pi OS 32-bit (Python 3.9.2, numpy 1.19.5,
#                            Pillow 8.1.2, numba 0.52.0 with llvmlite 0.35 / LLVM 9)
#            armhf-bookworm  Debian bookworm armhf = Raspberry Pi OS 32-bit today (Python 3.11, numpy 1.24,
#                            Pillow 9.4, numba 0.56.4 with llvmlite 0.39 / LLVM 14)
#            arm64           Debian bookworm arm64 (Python 3.11, numpy 1.24, numba 0.56, Pillow 9.4)
#            riscv64         Debian trixie riscv64 (Python 3.13, numpy 2.2, Pillow; Debian has no numba there)
#     DIR    default ${TINYRT_BOARD_CACHE:-~/.cache/tinyrt/boards}/<arch>-<suite>; DIR/root is the root
#
#   then: qemu-arm-static -L DIR/root DIR/root/usr/bin/python3 script.py
#         (qemu-aarch64-static for arm64, qemu-riscv64-static for riscv64)
#
# The root is built once: a marker file (DIR/.complete) is written last, so a present marker means a usable
# root and the script only prints where it is; a folder without the marker (an interrupted build) or with the
# marker of another recipe is deleted and built again. Building takes a few minutes (the downloads, then
# byte-compiling under emulation); the roots take about 210 MB (bullseye armhf), 340 MB (bookworm armhf),
# 90 MB (riscv64) and 450 MB (arm64) on disk.
# A lock file DIR.lock beside the folder keeps two builds from running at once.
# Debian's packages are downloaded with the host's apt (a private state folder, not the host's lists) and
# unpacked with `dpkg -x`: no maintainer scripts run, nothing is installed on the host.
set -euo pipefail
board=${1:?usage: make_root.sh armhf|armhf-bookworm|arm64|riscv64 [DIR]}
with_numba="python3 python3-numpy python3-pil python3-numba"
case "$board" in
  armhf) arch=armhf; suite=bullseye; triplet=arm-linux-gnueabihf; qemu=qemu-arm-static; packages=$with_numba ;;
  armhf-bookworm)
         arch=armhf; suite=bookworm; triplet=arm-linux-gnueabihf; qemu=qemu-arm-static; packages=$with_numba ;;
  arm64) arch=arm64; suite=bookworm; triplet=aarch64-linux-gnu; qemu=qemu-aarch64-static; packages=$with_numba ;;
  riscv64)
         arch=riscv64; suite=trixie; triplet=riscv64-linux-gnu; qemu=qemu-riscv64-static
         packages="python3 python3-numpy python3-pil" ;;
  *) echo "make_root.sh: unknown BOARD '$board' (armhf, armhf-bookworm, arm64 or riscv64)" >&2; exit 2 ;;
esac
cache=${TINYRT_BOARD_CACHE:-$HOME/.cache/tinyrt/boards}
w=${2:-$cache/$arch-$suite}
mirror=${TINYRT_DEBIAN_MIRROR:-http://deb.debian.org/debian}

command -v "$qemu" >/dev/null || { echo "make_root.sh: $qemu not found: apt-get install qemu-user-static" >&2; exit 3; }
mkdir -p "$(dirname "$w")"
# One build at a time per folder (two test runs may start together).
exec 9>"$w.lock"
flock 9
# The marker names what the root holds: a root built for other packages (an older recipe) is built again.
marker="recipe 2: $board $arch $suite $packages"
if [ -e "$w/.complete" ] && [ "$(cat "$w/.complete")" = "$marker" ]; then echo "$w/root"; exit 0; fi
rm -rf "$w"
mkdir -p "$w/lists/partial" "$w/cache/archives/partial" "$w/debs" "$w/root" "$w/etc"
echo "deb [trusted=yes] $mirror $suite main" > "$w/sources.list"; : > "$w/status"
o="-oAPT::Architecture=$arch -oAPT::Architectures=$arch -oDir::State::Lists=$w/lists -oDir::State::status=$w/status"
o="$o -oDir::Cache=$w/cache -oDir::Etc::SourceList=$w/sources.list -oDir::Etc::SourceParts=$w/etc"
o="$o -oDir::Etc::Preferences=$w/etc/preferences -oDir::Etc::PreferencesParts=$w/etc -oAcquire::Retries=3"
o="$o -oAPT::Sandbox::User=$(id -un)"   # as root, apt would hand the downloads to user _apt, who cannot write here
if ! apt-get $o update -qq >"$w/apt-update.log" 2>&1 || grep -q -E "^(E:|W: Failed|W: Some index)" "$w/apt-update.log"; then
  cat "$w/apt-update.log" >&2
  echo "make_root.sh: could not read Debian's $suite $arch package lists from $mirror (network down?)" >&2; exit 4
fi
# apt's own resolver picks the packages (first alternatives, no recommends) as if installing into an empty
# system; essential packages that only maintainer scripts need, and the compilers and headers that
# python3-scipy (a dependency of Debian's numba, through pythran) drags in, are left out: nothing here builds.
skip='^(debconf|dpkg|perl|perl-base|perl-modules-.*|libperl.*|install-info|tar|gcc|gcc-[0-9]+|g\+\+|g\+\+-[0-9]+|cpp|cpp-[0-9]+|binutils.*|libbinutils|libctf.*|libgprofng.*|lib(asan|tsan|lsan|ubsan|hwasan)[0-9]+|libcc1-0|libisl[0-9]+|libmpc[0-9]+|libmpfr[0-9]+|libboost.*|linux-libc-dev|libc-dev-bin|rpcsvc-proto|.*-dev|python3-pythran|python3-gast|python3-beniget|llvm-[0-9]+-(linker-tools|runtime)|libjs-.*)$'
pk=$(apt-get $o -s install --no-install-recommends $packages 2>"$w/apt-resolve.log" | awk '/^Inst /{print $2}' \
     | grep -v -E "$skip" || true)
[ -n "$pk" ] || { cat "$w/apt-resolve.log" >&2; echo "make_root.sh: apt could not resolve $packages" >&2; exit 4; }
if ! (cd "$w/debs" && apt-get $o download $pk >"$w/apt-download.log" 2>&1); then
  tail -20 "$w/apt-download.log" >&2
  echo "make_root.sh: could not download Debian's packages from $mirror (network down?)" >&2; exit 4
fi
for f in "$w"/debs/*.deb; do dpkg -x "$f" "$w/root"; done
# Merged /usr (trixie ships everything under usr/): qemu -L looks for the loader under ROOT/lib.
for d in lib bin sbin; do [ -e "$w/root/$d" ] || [ ! -d "$w/root/usr/$d" ] || ln -s "usr/$d" "$w/root/$d"; done
# Debian wires BLAS/LAPACK through update-alternatives at install time; dpkg -x does not, so link them by hand.
cd "$w/root/usr/lib/$triplet"
for l in libblas.so.3 liblapack.so.3 libopenblas.so.0; do
  if [ -e "openblas-pthread/$l" ]; then ln -sf "openblas-pthread/$l" "$l"
  elif [ -e "blas/$l" ]; then ln -sf "blas/$l" "$l"
  elif [ -e "lapack/$l" ]; then ln -sf "lapack/$l" "$l"; fi
done
cd /
rm -rf "$w/debs" "$w/cache" "$w/lists" "$w/etc"   # the root is all we keep
# Byte-compile the Python files, as Debian's postinst (py3compile) does on a real install: without the .pyc
# files every run would compile numba's and numpy's sources again under emulation (measured: importing
# numba took 30 s of CPU instead of 5). Test suites and scipy (numba's optional dependency) are left out.
"$qemu" -L "$w/root" "$w/root/usr/bin/python3" -m compileall -q -x '/tests?/|/scipy/' \
  "$w"/root/usr/lib/python3.* "$w/root/usr/lib/python3/dist-packages" >"$w/compileall.log" 2>&1 \
  || { tail -20 "$w/compileall.log" >&2; echo "make_root.sh: byte-compiling the root's Python failed" >&2; exit 5; }
"$qemu" -L "$w/root" "$w/root/usr/bin/python3" -c \
  "import platform, numpy, PIL; print(platform.machine(), platform.python_version(), numpy.__version__, PIL.__version__)" >&2
echo "$marker" > "$w/.complete"
echo "$w/root"
