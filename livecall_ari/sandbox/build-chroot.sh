#!/usr/bin/env bash
# Build (or reuse) the Debian sid chroot that holds the sandbox's Asterisk 22.
# Usage: build-chroot.sh DIR
# Debian 12 has no asterisk package; sid has Asterisk 22. The chroot is built once into a
# cache directory outside the repository and reused while its ready-marker is present and the
# asterisk binary inside it still runs.
set -euo pipefail
dir=${1:?usage: build-chroot.sh DIR}
marker="$dir/.livecall-ready"
mirror=${LIVECALL_DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [ -f "$marker" ] && chroot "$dir" /usr/sbin/asterisk -V >/dev/null 2>&1; then
  echo "sandbox chroot: reusing $dir ($(chroot "$dir" /usr/sbin/asterisk -V))"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "sandbox chroot: building needs root (debootstrap, chroot)" >&2
  exit 1
fi
command -v debootstrap >/dev/null || { echo "sandbox chroot: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }

echo "sandbox chroot: building into $dir (about a minute)"
rm -rf "$dir.partial"
mkdir -p "$(dirname "$dir")"
debootstrap --variant=minbase sid "$dir.partial" "$mirror" >"$dir.partial.log" 2>&1 || {
  echo "sandbox chroot: debootstrap failed; last lines of $dir.partial.log:" >&2
  tail -n 20 "$dir.partial.log" >&2
  exit 1
}
# Keep services from starting inside the chroot while packages install.
printf '#!/bin/sh\nexit 101\n' >"$dir.partial/usr/sbin/policy-rc.d"
chmod +x "$dir.partial/usr/sbin/policy-rc.d"
chroot "$dir.partial" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
  --no-install-recommends asterisk asterisk-core-sounds-en-gsm >>"$dir.partial.log" 2>&1 || {
  echo "sandbox chroot: apt-get install asterisk failed; last lines of $dir.partial.log:" >&2
  tail -n 20 "$dir.partial.log" >&2
  exit 1
}
chroot "$dir.partial" apt-get clean
rm -rf "$dir"
mv "$dir.partial" "$dir"
mv "$dir.partial.log" "$dir.build.log"
chroot "$dir" /usr/sbin/asterisk -V >"$marker"
echo "sandbox chroot: ready ($(cat "$marker"))"
