"""
Decompose the strain: chemical, coherency, residual, stress
===========================================================

With the law, :meth:`~hyperspy_chemomech.signals.StrainField.decompose` splits the
measured strain pixel by pixel into the chemical expansion eps0(X(r)), the
coherency strain that keeps the phases bonded, and the residual the chemistry does
not explain; and gives the coherency stress in GPa.
"""

from hyperspy_chemomech.simulate import make_particle

p = make_particle(shape=(50, 80), pixel_size=5.0, noise=1e-4, seed=2)
strain, comp = p.strain_field(), p.composition_map()
law = strain.learn_eigenstrain(comp, degree=1)
parts = strain.decompose(comp, law)
print(parts.summary())

# %%
# Parts (rows) by components (columns), one colour scale per column.
parts.plot()

# %%
# The coherency stress (GPa), centred on zero.
parts.plot_stress()
