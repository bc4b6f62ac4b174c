"""asdtheory: why angular margin losses work for semi-supervised anomalous sound detection.

A JAX library and a collection of executed notebooks that check, claim by claim, the argument
of K. Wilkinghoff and F. Kurth, "Why do angular margin losses work well for semi-supervised
anomalous sound detection?", IEEE/ACM TASLP 32 (2024), 608-622, arXiv:2309.15643.
"""

__version__ = "0.1.0"
