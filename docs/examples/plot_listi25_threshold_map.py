"""
LISTI25: a local threshold map and its goodness
===============================================

LISTI25 probed small windows of 2D silica in shear to get a map of local yield thresholds Δτ, then sheared the
whole sample and asked whether the plastic events happen where Δτ is low. The *goodness* C = 1 − 2F(Δτ at the
event), with F the distribution of the map, is 1 at the weakest window and 0 on average for a map that knows
nothing. Here: a 2D Yukawa monolayer of 10 × 10 rings (500 atoms; LISTI25's have 10⁴), probed on an 8 × 8
grid with 8 Å windows, and sheared (pure shear) to its first three events.
"""

import matplotlib.pyplot as plt
import numpy as np

import glassfrac as gf
from glassfrac.report.probe_plot import plot_threshold_map

sample = gf.relax(gf.generate(rings=(10, 10), mu2=0.8, distribution="lognormal", seed=2))
thresholds = gf.probe(sample, grid=8, r_free=8.0)
shear = gf.shear(sample, max_strain=0.15, step=0.005, precision=1e-3, events=3)
events = np.array([event.location[:2] for event in shear.events])
goodness = thresholds.goodness(events, sample.box)
print(f"Δτ from {thresholds.threshold.min():.3f} to {thresholds.threshold.max():.3f} N/m")
print("events at strains", [round(e.strain, 4) for e in shear.events], "; goodness C:", np.round(goodness, 2))

# %%
# The map (red: weak) with the events numbered in order.
fig, ax = plt.subplots(figsize=(6, 5))
plot_threshold_map(thresholds.threshold, sample.box, events, ax=ax,
                   title=f"Δτ and the first shear events (C = {', '.join(f'{c:.2f}' for c in goodness)})")
fig.tight_layout()
