"""
FC22: which atoms break first, from the undeformed structure
============================================================

FC22 trained a support vector machine on per-atom structure functions of the *undeformed* glass to flag the
atoms of the first bond that breaks in tension. Here: ten 2D Yukawa monolayers (6 × 6 rings, μ₂ = 0.8) are
pulled to strain 0.08, past their first bond break; :class:`gf.SoftnessSVM <glassfrac.api.SoftnessSVM>` learns
the ``first_break`` class from FC22's load-aware descriptor on nine of them and is scored on held-out samples
(every atom by a model that never saw its sample). Nine samples give about 18 positive atoms, so the numbers
are rough; FC22 used thousands of samples.
"""

import matplotlib.pyplot as plt
import numpy as np

import glassfrac as gf

samples = [gf.relax(gf.generate(rings=(6, 6), mu2=0.8, seed=seed)) for seed in range(10)]
tests = [gf.tension(s, step=0.01, precision=2e-3, max_strain=0.08, fmax=1e-6) for s in samples]
print("first-break strains:", [None if t.labels.rupture_strain is None else round(t.labels.rupture_strain, 3)
                               for t in tests])

unseen = max(k for k, t in enumerate(tests) if t.labels.first_broken_bond is not None)
training = [k for k in range(len(samples)) if k != unseen]
svm = gf.SoftnessSVM(C=1.0, folds=4, evaluate=True).fit([samples[k] for k in training], [tests[k] for k in training])
held_out = svm.evaluation_.summary()
print(f"held out over {len(training)} samples: ROC AUC {held_out['roc_auc']:.2f}, "
      f"sensitivity {held_out['sensitivity']:.2f}, specificity {held_out['specificity']:.2f}")

# %%
# One sample was never used in training. Its softness map: the atoms the model ranks most likely to break
# first are dark red; circles mark the two atoms of the bond that did break first.
last, test = samples[unseen], tests[unseen]
softness = svm.softness(last)
rank = (softness > softness[list(test.labels.first_broken_bond)].min()).mean()
print(f"on the unseen sample, the broken bond's atoms are in the top {100 * rank:.0f} % of softness")

fig, ax = plt.subplots(figsize=(6, 5))
dots = ax.scatter(*last.positions[:, :2].T, c=softness, cmap="RdBu_r", s=18,
                  vmin=-np.abs(softness).max(), vmax=np.abs(softness).max())
broken = last.positions[list(test.labels.first_broken_bond), :2]
ax.scatter(*broken.T, s=160, facecolors="none", edgecolors="black", linewidths=2, label="first broken bond")
ax.set(xlabel="x (Å)", ylabel="y (Å)", title="softness of an unseen sample", aspect="equal")
ax.legend(loc="upper right")
fig.colorbar(dots, ax=ax, label="softness (> 0: predicted to break first)")
fig.tight_layout()
