"""What every backend implements: feature names, formulas, constants and plans shared by rlnfast.ops
(the dispatching ops) and rlnfast.reference (the NumPy reference), so that neither imports the other."""
