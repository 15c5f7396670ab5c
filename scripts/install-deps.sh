#!/usr/bin/env bash
# Installs the Debian 12 packages selmask needs to build, test and run its examples.
# Idempotent: does nothing when everything is already installed. Needs root (or sudo).
set -euo pipefail

packages=(
  build-essential cmake pkg-config ccache
  libxtensor-dev libxtensor-blas-dev libxsimd-dev xtl-dev libboost-dev
  libopenblas-dev zlib1g-dev libpng-dev
  catch2 libbenchmark-dev python3-venv
  nlohmann-json3-dev libcurl4-openssl-dev nginx libturbojpeg0-dev libjpeg62-turbo-dev
  libgdal-dev libtiff-dev libhdf5-dev
  libopenmpi-dev openmpi-bin
  dataset-fashion-mnist
  gnuplot-nox
  libtorch-dev python3-torch
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  as_root=(sudo)
fi
echo "selmask: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q
"${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
