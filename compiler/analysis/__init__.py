"""Analyses the compiler's stages run: the state bound of every node (bounds.py), ANN MACs (macs.py)."""
