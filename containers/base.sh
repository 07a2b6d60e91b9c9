#!/usr/bin/env bash
# Build a base image offline from Debian packages (no registry needed): bookworm with python3,
# python3-venv and tini (or the packages given), without docs, man pages, locales or apt's lists.
#   containers/base.sh [IMAGE [PACKAGES]]  (default localhost/ingestd-base:bookworm)
set -euo pipefail
image=${1:-localhost/ingestd-base:bookworm}
packages=${2:-python3,python3-venv,tini}
command -v mmdebstrap >/dev/null || { echo "base.sh: mmdebstrap is missing (apt-get install mmdebstrap)" >&2; exit 1; }
tar=$(mktemp --suffix=.tar)
trap 'rm -f "$tar"' EXIT
mmdebstrap --quiet --variant=minbase --include="$packages" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    bookworm "$tar"
podman import --quiet --change 'CMD ["/bin/bash"]' "$tar" "$image" >/dev/null
echo "base.sh: $image ($(podman image inspect --format '{{.Size}}' "$image") bytes)"
