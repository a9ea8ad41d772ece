"""The NumPy reference of every op: slow, per region, written to be obviously correct.

Each function's docstring states the formula and the standard it follows; the compiled and GPU backends
are tested against these functions, and these functions against external references (pyradiomics, SciPy,
IBSI, analytic shapes).
"""
