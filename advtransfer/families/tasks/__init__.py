"""Knowledge transfer among tasks (Liang et al. 2021, Section 4.4, Figures 4 and 5): the family's slice."""
