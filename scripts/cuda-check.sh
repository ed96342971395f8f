#!/usr/bin/env bash
# The CUDA backend's checks on a machine with an NVIDIA GPU (see docs/cuda.md).
#
#   scripts/cuda-check.sh prepare      # where cargo is: build the release binaries
#                                      # with --features cuda into .gpu/ (git-ignored)
#   scripts/cuda-check.sh run OUT      # on the GPU machine (no Rust needed): device
#                                      # tests, then bench --profile on cpu, cuda and auto
#
# `run` writes OUT/tests.log and OUT/prof-{cat,ams,large}/profile.{md,csv}, and
# prints the tables' first columns last.
set -uo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
prepare)
    set -e
    mkdir -p .gpu
    cargo build --release --features cuda
    cp target/release/natgrad .gpu/natgrad
    tests=$(cargo test --release --features cuda --no-run 2>&1)
    lib=$(grep -o 'unittests src/lib.rs (target/release/deps/[^)]*' <<<"$tests" | sed 's/.*(//')
    dev=$(grep -o 'tests/cuda.rs (target/release/deps/[^)]*' <<<"$tests" | sed 's/.*(//')
    cp "$lib" .gpu/lib-tests
    cp "$dev" .gpu/cuda-tests
    ls -l .gpu
    ;;
run)
    out=${2:?usage: scripts/cuda-check.sh run OUT}
    mkdir -p "$out"
    export PATH=/usr/local/nvidia/bin:$PATH
    { nvidia-smi --query-gpu=name,driver_version,memory.used --format=csv; nproc; } | tee "$out/tests.log"
    echo "== device unit tests"
    ./.gpu/lib-tests cuda --nocapture --test-threads=1 2>&1 | tee -a "$out/tests.log" | tail -15
    echo "== optimiser steps on the device"
    ./.gpu/cuda-tests --nocapture --test-threads=1 2>&1 | tee -a "$out/tests.log" | tail -12
    cores=$(nproc)
    echo "== profile: catalogue, ANaGRAM, full SVD"
    ./.gpu/natgrad bench --profile --problems laplace2d,heat,burgers,allen-cahn,nonlinear-poisson \
        --optimizers anagram --svd full --device cpu,cuda,auto --threads "$cores" \
        --warmup 2 --profile-iters 5 --out "$out/prof-cat" --quiet 2>&1 | tail -3
    echo "== profile: AMStraMGRAM on heat and allen-cahn"
    ./.gpu/natgrad bench --profile --problems heat,allen-cahn --optimizers amstramgram --svd full \
        --device cpu,cuda --threads "$cores" --warmup 2 --profile-iters 3 \
        --out "$out/prof-ams" --quiet 2>&1 | tail -3
    echo "== profile: P = 4417, S = 20000"
    ./.gpu/natgrad bench --profile --config examples/configs/poisson-large.toml \
        --optimizers anagram --device cuda,auto,cpu --threads "$cores" --warmup 1 \
        --profile-iters 2 --out "$out/prof-large" 2>&1 | tail -8
    for d in prof-cat prof-ams prof-large; do
        echo "== $d"
        grep "^|" "$out/$d/profile.md" | cut -d'|' -f2-12
    done
    ;;
*)
    echo "usage: scripts/cuda-check.sh prepare | run OUT" >&2
    exit 2
    ;;
esac
