#!/usr/bin/env bash
# Installs the Debian / Ubuntu packages Loom builds against, if any are missing.
# As root it runs apt-get; otherwise it prints the exact command to run and stops.
set -euo pipefail

packages=(pkg-config libopenblas-dev libpng-dev libjpeg-dev libhdf5-dev zlib1g-dev unzip)

if ! command -v swift >/dev/null 2>&1; then
    echo "error: swift is not on PATH; install Swift 6.1 or newer from swift.org first" >&2
    exit 1
fi
if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "error: this script needs a Debian or Ubuntu system (dpkg-query not found)" >&2
    exit 1
fi

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

command_line="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "Loom needs these system packages: ${missing[*]}" >&2
    echo "Run, then try again:" >&2
    echo "    sudo sh -c '$command_line'" >&2
    exit 1
fi
echo "Installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
