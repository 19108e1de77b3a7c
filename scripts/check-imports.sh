#!/usr/bin/env bash
# Checks that linked Windows executables have no load-time dependency on the container
# DLLs: computecore.dll, vmcompute.dll, computenetwork.dll and computestorage.dll are loaded
# on first use (LoadLibraryExW + GetProcAddress), so a binary still starts on a Windows
# without the Containers feature. The compile-time signature checks against Microsoft's
# metadata name the metadata's imports in `const` items only; this proves none of them
# reached an import table.
#
# Usage: check-imports.sh EXE...   (PE files built for x86_64-pc-windows-gnu)
set -euo pipefail

OBJDUMP=${OBJDUMP:-x86_64-w64-mingw32-objdump}
FORBIDDEN='^(computecore|vmcompute|computenetwork|computestorage)\.dll$'

if (($# == 0)); then
  echo "check-imports: no executables given" >&2
  exit 1
fi
status=0
for exe in "$@"; do
  dlls=$("$OBJDUMP" -p "$exe" | sed -n 's/^[[:space:]]*DLL Name: //p' | tr 'A-Z' 'a-z' | sort -u)
  # A PE file without kernel32 means the import table was not read: fail rather than pass.
  if ! grep -qx 'kernel32.dll' <<<"$dlls"; then
    echo "check-imports: $exe: no kernel32.dll import found; cannot read its import table" >&2
    status=1
    continue
  fi
  if bad=$(grep -E "$FORBIDDEN" <<<"$dlls"); then
    echo "check-imports: $exe imports $(tr '\n' ' ' <<<"$bad")at load time" >&2
    status=1
  else
    echo "check-imports: $(basename "$exe"): $(wc -l <<<"$dlls") DLLs, none of the container DLLs"
  fi
done
exit $status
