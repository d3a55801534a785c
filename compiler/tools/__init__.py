"""The command layer: one module per ``snnc`` command's library logic, and the click wiring (``cli.py``).

Only this package imports ``snnc.backends`` (the compiler's stages never do): it passes the reference
simulator to the compiler as its ``Runner`` (``runner.py``) and runs bundles on the backends.
"""
