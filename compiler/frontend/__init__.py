"""Frontends: a model file -> the float graph (``float_graph.FGraph``) every later stage works on."""
