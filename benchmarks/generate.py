"""Sample generation: time and accuracy of the bond-switching generator.

    python benchmarks/generate.py [--quick]

(a) Time (wall and CPU seconds, one thread, after a warm-up) to generate a 288-ring sample
    (16 × 18 rings, FC22 bilayer, 3456 atoms) and a 10^4-atom monolayer (40 × 50 = 2000
    rings), both at mu2 = 0.5 with default steps; with the share of switching and geometry.
    Goals: ≤ 2 s and ≤ 20 s on 2 cores. The machine is shared: the load average is printed.
(b) Ensemble accuracy: 10 seeds (--quick: 3) of 288-ring networks at mu2 = 0.2, 0.4, 0.6,
    0.8, 1.0 (--quick: 0.2, 1.0), gamma target, alpha target 1/3: mean ± sd of the achieved
    mu2 and alpha, and the fraction of valid embeddings; the same switching at FC22's
    constant T = 1e-4 (no anneal) for comparison (not with --quick).
(c) Log-normal targets with sigma factors 0.6, 1.0, 1.5 (--quick: 1.0) on 15 × 18 = 270-ring
    networks, the size of the JuMol samples whose README quotes mu2 ≈ 0.45, 1.1, 1.9.

Prints one JSON object per figure.
"""

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from glassfrac.core.threads import set_threads  # noqa: E402
from glassfrac.generate import DualLattice, bond_switch, embed, generate  # noqa: E402
from glassfrac.generate.targets import gamma_target  # noqa: E402
from results import publish  # noqa: E402

SEEDS = 10


def emit(figure, value, unit, reference=None, **extra):
    publish({"benchmark": "generate", "figure": figure, "value": value, "unit": unit,
             "reference": reference or {}, "extrapolated": False, **extra})


def timed(fn, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def timing(figure, rings, kind, goal):
    s, wall, cpu = timed(generate, rings, mu2=0.5, kind=kind, seed=1)
    dual = DualLattice.honeycomb(*rings)
    _, mc_wall, mc_cpu = timed(bond_switch, dual, gamma_target(0.5), rng=np.random.default_rng(1))
    _, emb_wall, emb_cpu = timed(embed, dual)
    emit(figure, round(wall, 3), "s", {"what": "goal on this machine", "value": goal,
                                      "unit": "s"},
         cpu_s=round(cpu, 3), n_atoms=s.n_atoms, n_rings=s.info["n_rings"], kind=kind,
         switching_cpu_s=round(mc_cpu, 3), geometry_cpu_s=round(emb_cpu, 3),
         steps=s.info["steps"], mu2=s.info["mu2"], alpha=s.info["alpha"],
         load_average=round(os.getloadavg()[0], 2))


def ensemble(mu2_values, seeds, quick):
    for mu2 in mu2_values:
        stats, valid = [], 0
        for seed in range(seeds):
            s = generate((16, 18), mu2=mu2, kind="network", seed=seed)
            stats.append((s.info["mu2"], s.info["alpha"]))
            valid += s.info["geometry"] == "relaxed"
        m, a = np.array(stats).T
        dataset = f"{seeds} seeds (0..{seeds - 1}) x 288 rings (16 x 18), gamma, alpha_t 1/3"
        emit(f"ensemble_288_mu2_{mu2}_mu2", round(m.mean(), 4), "", {"what": "target",
             "value": mu2, "unit": ""}, sd=round(m.std(), 4), dataset=dataset)
        emit(f"ensemble_288_mu2_{mu2}_alpha", round(a.mean(), 4), "", {"what": "target",
             "value": round(1 / 3, 4), "unit": ""}, sd=round(a.std(), 4), dataset=dataset,
             valid_fraction=valid / seeds)
        if quick:
            continue
        const = []
        for seed in range(seeds):
            dual = DualLattice.honeycomb(16, 18)
            r = bond_switch(dual, gamma_target(mu2), rng=np.random.default_rng(seed),
                            anneal=False)
            const.append((r.mu2, r.alpha))
        m, a = np.array(const).T
        emit(f"ensemble_288_mu2_{mu2}_alpha_constant_T", round(a.mean(), 4), "",
             {"what": "target", "value": round(1 / 3, 4), "unit": ""}, sd=round(a.std(), 4),
             mu2_mean=round(m.mean(), 4), mu2_sd=round(m.std(), 4),
             dataset=dataset + ", switching at constant T = 1e-4 (FC22), no geometry")


def lognormal(factors, seeds):
    jumol = {0.6: 0.45, 1.0: 1.1, 1.5: 1.9}
    for f in factors:
        stats = []
        for seed in range(seeds):
            s = generate((15, 18), distribution="lognormal", sigma_factor=f, kind="network",
                         seed=seed)
            stats.append((s.info["mu2"], s.info["alpha"]))
        m, a = np.array(stats).T
        emit(f"lognormal_270_f_{f}_mu2", round(m.mean(), 4), "",
             {"what": f"JuMol README, sig_{f:.2f} samples (roughly)", "value": jumol[f],
              "unit": ""}, sd=round(m.std(), 4), target_mu2=round(s.info["mu2_target"], 4),
             alpha_mean=round(a.mean(), 4), alpha_sd=round(a.std(), 4),
             dataset=f"{seeds} seeds x 270 rings (15 x 18), lognormal f = {f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer seeds and targets")
    args = parser.parse_args()
    set_threads(1)
    generate((8, 8), mu2=0.5, kind="monolayer", seed=0)  # warm-up (imports, caches)
    timing("288_rings_bilayer_mu2_0.5", (16, 18), "bilayer", 2.0)
    timing("2000_rings_monolayer_mu2_0.5", (40, 50), "monolayer", 20.0)
    seeds = 3 if args.quick else SEEDS
    ensemble((0.2, 1.0) if args.quick else (0.2, 0.4, 0.6, 0.8, 1.0), seeds, args.quick)
    lognormal((1.0,) if args.quick else (0.6, 1.0, 1.5), seeds)


if __name__ == "__main__":
    main()
