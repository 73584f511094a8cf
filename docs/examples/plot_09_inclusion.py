"""
The eigenstrain of an inclusion (Eshelby)
=========================================

A disc with a uniform in-plane dilatational eigenstrain in a large, free square
matrix (plane strain): inside, the strain is uniform, Eshelby's
eps*/(2(1 - nu)) for an infinite matrix (the finite matrix adds ~(a/R)^2, here
under 1 %); outside it decays as 1/r^2. This is the mechanics under the learning.
"""

import matplotlib.pyplot as plt
import numpy as np

from hyperspy_chemomech.mechanics import ParticleElasticity, isotropic_stiffness, plane_stiffness

n = 120
y, x = np.mgrid[0:n, 0:n] - (n - 1) / 2
inside = np.hypot(x, y) < 10
eps0 = np.zeros((3, n, n))
eps0[0][inside] = eps0[1][inside] = 0.01
solver = ParticleElasticity(np.ones((n, n), bool), pixel_size=1.0,
                            stiffness=plane_stiffness(isotropic_stiffness(100.0, 0.3),
                                                      plane="strain"))
sol = solver.solve(eps0, show_progressbar=False)
print("e11 at the centre", sol.strain[0][n // 2, n // 2], "Eshelby", 0.01 / (2 * 0.7))

fig, ax = plt.subplots(1, 2, figsize=(9, 3.6), layout="constrained")
im = ax[0].imshow(sol.strain[0], cmap="RdBu_r", vmin=-0.01, vmax=0.01)
fig.colorbar(im, ax=ax[0], label="e11 (strain)")
ax[0].set_title("e11")
ax[0].set_xlabel("x (px)")
ax[0].set_ylabel("y (px)")
ax[1].plot(sol.strain[0][n // 2], label="e11 along x")
ax[1].axhline(0.01 / (2 * 0.7), ls="--", c="k", label="Eshelby, infinite matrix")
ax[1].set_xlabel("x (px)")
ax[1].set_ylabel("e11 (strain)")
ax[1].legend()
