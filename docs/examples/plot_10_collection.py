"""
One law from a collection of particles
======================================

:func:`hyperspy_chemomech.learn_eigenstrain_collection` learns one eigenstrain law
from many particles, each with its own grid, pixel size, crystal orientation,
reference strain, composition resolution and dislocations, and tests whether one
law explains them all. Here: ten synthetic platelets
(:func:`~hyperspy_chemomech.simulate.collection.particle_collection`: strain noise
2e-3, the composition as an X-ray map four times coarser gives it, C(X) stiffness),
two of which follow a law 10 % steeper.
"""

import matplotlib.pyplot as plt
import numpy as np

import hyperspy_chemomech as hcm
from hyperspy_chemomech.simulate import particle_collection

col = particle_collection(n_members=10, n_odd=2, odd_factor=1.10, shape=(80, 130),
                          n_dislocations=1, seed=0, show_progressbar=False)
print("members:", [s.data.shape[1:] for s in col.strains])
print("truly odd:", col.odd.tolist())

law = hcm.learn_eigenstrain_collection(col.strains, col.compositions, show_progressbar=False)

# %%
# The homogeneity test compares each member's own law with the shared law of the
# others (Holm-corrected over members) and names the members that do not fit.
print(law.homogeneity)
print("named odd:", law.homogeneity.odd_members)

# %%
# Refit without the members that failed the test: the shared law of the rest.
keep = [i for i in range(len(col.strains)) if i not in law.homogeneity.odd_members]
shared = hcm.learn_eigenstrain_collection([col.strains[i] for i in keep],
                                          [col.compositions[i] for i in keep],
                                          show_progressbar=False)
v = shared.vegard()
print("shared slopes", v["slopes"], "truth", col.law.slopes)
print("shared 95 % intervals", v["ci95"])

# %%
# Each member's slopes with their 95 % intervals (odd members in red) against the
# shared slope and its interval (blue band) and the truth (dashed). The shared
# interval is several times narrower than a member's; here it lies 1 to 2 % above
# the truth, as every member's own fit does: the composition's point-spread function
# (4x coarser X-ray pixels, resampled) is modelled as a Gaussian one X-ray pixel
# wide, narrower than it is, a bias that averaging over members cannot remove
# (``benchmarks/collection.py`` measures it).
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
idx = np.arange(len(col.strains))
for k, (ax, name) in enumerate(zip(axes, ("[100]", "[001]"))):
    for i, m in enumerate(law.member_laws):
        mv = m.vegard()
        lo, hi = mv["ci95"][k]
        colour = "tab:red" if i in col.odd else "k"
        ax.errorbar(i, mv["slopes"][k], yerr=[[mv["slopes"][k] - lo], [hi - mv["slopes"][k]]],
                    fmt="o", color=colour, capsize=3)
    ax.axhspan(*v["ci95"][k], color="tab:blue", alpha=0.3, label="shared 95 % (odd left out)")
    ax.axhline(col.law.slopes[k], color="tab:blue", ls="--", label="truth")
    ax.set_xticks(idx)
    ax.set_xlabel("member")
    ax.set_ylabel(f"slope d eps0 / dX along {name}")
    ax.set_title(f"{name}: members (odd in red) vs the shared law")
axes[0].legend(fontsize="small")
fig.tight_layout()
