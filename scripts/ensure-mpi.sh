#!/usr/bin/env bash
# Makes sure OpenMPI (mpirun, mpicc, the pkg-config file) is installed:
# installs it from Debian's packages when running as root, otherwise says
# what to install.
set -euo pipefail
if command -v mpirun >/dev/null 2>&1 && pkg-config --exists ompi 2>/dev/null; then
  exit 0
fi
pkgs="openmpi-bin libopenmpi-dev pkg-config"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-mpi: installing $pkgs" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
else
  echo "ensure-mpi: OpenMPI is missing; install it with: sudo apt-get install $pkgs" >&2
  exit 1
fi
