#!/usr/bin/env bash
# Runs Windows (x86_64-pc-windows-gnu) test binaries under Wine: the Win32 layer's unit tests
# (event trampolines, strings, layer descriptors), the HCS sandbox against the simulators,
# the named-pipe control channel, process liveness. Wine is not Windows and has no Host
# Compute Service or Hyper-V sockets: this runs the code paths that need neither.
#
# Usage: wine-tests.sh EXE...
set -euo pipefail
cd "$(dirname "$0")/.."

WINE=${WINE:-$(command -v wine64 || echo /usr/lib/wine/wine64)}
export WINEPREFIX=${WINEPREFIX:-$PWD/target/wine-prefix}
export WINEDEBUG=-all

if [ ! -x "$WINE" ]; then
  echo "wine-tests: wine64 not found (setup.sh installs it)" >&2
  exit 1
fi
if (($# == 0)); then
  echo "wine-tests: no test executables given" >&2
  exit 1
fi

# Rust's std imports ProcessPrng from bcryptprimitives.dll, which Debian 12's Wine 8 lacks:
# give the prefix a one-function DLL that forwards to RtlGenRandom (advapi32).
if [ ! -f "$WINEPREFIX/.runhcs-ready" ]; then
  mkdir -p "$WINEPREFIX"
  "$WINE" cmd /c exit >/dev/null 2>&1 || true # creates the prefix; its exit code is moot
  src=$(mktemp -d)
  cat >"$src/prng.c" <<'EOF'
#include <windows.h>
#define SystemFunction036 NTAPI SystemFunction036
#include <ntsecapi.h>
#undef SystemFunction036
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
  return RtlGenRandom(data, (ULONG)len);
}
EOF
  x86_64-w64-mingw32-gcc -shared -O2 -o "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" \
    "$src/prng.c" -ladvapi32
  rm -rf "$src"
  touch "$WINEPREFIX/.runhcs-ready"
fi

status=0
for exe in "$@"; do
  name=$(basename "$exe")
  out=$(mktemp)
  # A run that ends without the test harness's summary line never ran the tests: Wine
  # itself failed (seen once: "wine client error: recvmsg: Connection reset by peer").
  # That is retried once; a test failure, which always prints its summary, is not.
  for attempt in 1 2; do
    if "$WINE" "$exe" >"$out" 2>&1; then ok=1; else ok=0; fi
    if [ $ok -eq 1 ] || grep -qE '^test result' "$out" || [ $attempt -eq 2 ]; then break; fi
    echo "wine-tests: $name: Wine failed before the tests ran; retrying once:" >&2
    tail -n 5 "$out" >&2
  done
  if [ $ok -eq 1 ]; then
    echo "wine-tests: $name: $(grep -E '^test result' "$out" | tail -n 1)"
  else
    echo "wine-tests: $name FAILED:" >&2
    tail -n 40 "$out" >&2
    status=1
  fi
  rm -f "$out"
done
exit $status
