"""The synthetic experiment (Section 4.1, Figure 2): an RBF regression target, one-hidden-layer sigmoid MLPs,
sources f_S = f_T + t V. The family's slice: its claims and checks (claims.py); the science is in
advtransfer/synthetic.py."""
