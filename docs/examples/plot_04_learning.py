"""
Learn the eigenstrain law
=========================

From a strain field and the composition on the same grid,
:meth:`~hyperspy_chemomech.signals.StrainField.learn_eigenstrain` learns how the
stress-free lattice changes with composition, eps0(X) - eps0(0), under mechanical
equilibrium (the coherency strains are modelled, not ignored), with a 95 % band and
a test of Vegard's law.
"""

from hyperspy_chemomech.simulate import make_particle

p = make_particle(shape=(60, 100), pixel_size=5.0, noise=1e-3, blur_factor=3, seed=4)
strain, comp = p.strain_field(), p.composition_map()
law = strain.learn_eigenstrain(comp, degree=1)
v = law.vegard()
print("slopes", v["slopes"], "truth", p.law.slopes)
print("95 % intervals", v["ci95"])

# %%
# The law per crystal axis: curve, band, Vegard line and how many pixels have
# each composition (grey, right axis).
law.plot()
