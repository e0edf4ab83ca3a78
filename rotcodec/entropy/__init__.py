"""Entropy coding of codes with a learned context model whose probabilities are integers.

``model`` (the integer context model and its ``.npz`` file), ``coder`` (the range coder),
``payload`` (codes <-> entropy-coded bytes), ``bundled`` (finding the context model a file
names), ``fit`` (training and quantisation, needs torch). Nothing is imported here.
"""
