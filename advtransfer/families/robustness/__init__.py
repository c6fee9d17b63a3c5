"""Robustness transfer across source training schemes (Kopetzki et al.), robust representation matching
(Vaishnavi et al.) and randomized smoothing (Cohen et al.): the family's slice."""
