#!/usr/bin/env bash
# Set up a fresh Debian machine (as root) to build, run and test the sensor.
# Idempotent: it installs only what is missing. The README's two commands,
# CI (.ci/run) and the Vagrant box all run this same script.
set -euo pipefail

need_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "setup: run as root (the sensor loads eBPF programs; packages are installed with apt)" >&2
		exit 1
	fi
}
need_root

export PATH="/usr/local/go/bin:$PATH"

# Debian packages: clang/llvm 19 and libbpf headers to regenerate the eBPF
# objects (go build alone needs none: the objects are committed), bpftool for
# inspection, node/npm for the end-to-end tests with real npm MCP servers,
# python3 (its ssl module loads the system's libssl) for the TLS tests,
# chromium for the dashboard's browser tests (headless, driven by chromedp).
pkgs=(clang-19 llvm-19 libbpf-dev bpftool make git ca-certificates libssl3 tmux chromium)
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v python3 >/dev/null 2>&1 || pkgs+=(python3)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	echo "setup: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v go >/dev/null 2>&1; then
	echo "setup: Go is not installed (expected at /usr/local/go, version $(sed -n 's/^go //p' "$(dirname "$0")/../go.mod") or newer)" >&2
	exit 1
fi

# Modules, so the first build or test does not stall on downloads.
cd "$(dirname "$0")/.."
go mod download
echo "setup: ready ($(go version | cut -d' ' -f3), $(clang-19 --version | head -1))"
