#!/usr/bin/env bash
# The figures of docs/figures.md: trains heat (natgrad's default, 45 s, with a
# model snapshot at initialisation) and laplace2d (the papers' ANaGRAM, 20 s),
# then draws the kernels and the spectra into docs/figures/. About 80 s on
# the 2-core development machine. Usage: scripts/gallery.sh [natgrad binary]
set -euo pipefail
cd "$(dirname "$0")/.."
NATGRAD=${1:-target/release/natgrad}
if [ ! -x "$NATGRAD" ]; then
    cargo build --release
fi
RUNS=runs/gallery
FIG=docs/figures
mkdir -p "$RUNS" "$FIG"
"$NATGRAD" solve heat --max-seconds 45 --save-models-at 0 --out "$RUNS/heat" --force -q
"$NATGRAD" solve laplace2d --preset paper --max-seconds 20 --out "$RUNS/laplace2d" --force -q
"$NATGRAD" kernel "$RUNS/heat" --kind ntk --at 0.5,0.5 --model iter:0 --out "$FIG/heat-ntk-init.png"
"$NATGRAD" kernel "$RUNS/heat" --kind ntk --at 0.5,0.5 --out "$FIG/heat-ntk-trained.png"
"$NATGRAD" kernel "$RUNS/laplace2d" --kind green --at 0.5,0.5 --out "$FIG/laplace2d-green.png"
"$NATGRAD" kernel "$RUNS/laplace2d" --kind operator-ntk --at 0.5,0.5 --out "$FIG/laplace2d-operator-ntk.png"
"$NATGRAD" plot "$RUNS/laplace2d" --iters 10,1000 --out "$RUNS/laplace2d/plots" >/dev/null
cp "$RUNS/laplace2d/plots/spectrum-iter10.png" "$FIG/laplace2d-spectrum-iter10.png"
cp "$RUNS/laplace2d/plots/spectrum-iter1000.png" "$FIG/laplace2d-spectrum-iter1000.png"
echo "gallery: $FIG"
