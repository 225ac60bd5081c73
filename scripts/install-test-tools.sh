#!/usr/bin/env bash
# Installs the system tools the fault tests (__test__/faults.test.mjs, crash.test.mjs) use, when
# they are missing: libfiu's fiu-run (Debian package fiu-utils) to make syscalls fail, and a C
# compiler for the tests' LD_PRELOAD shims (__test__/fixtures/*.c). Debian/Ubuntu; runs apt-get as
# root (or through sudo). The tests also need bash, mount and unshare (util-linux: the tmpfs goes in a
# mount namespace of its own, a user namespace too when not root), but not root themselves.
set -euo pipefail

missing=()
command -v fiu-run >/dev/null 2>&1 || missing+=(fiu-utils)
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo[@]}" apt-get install -y -qq "${missing[@]}"; then
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq "${missing[@]}"
fi
