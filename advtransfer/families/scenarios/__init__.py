"""Knowledge transfer among data distributions (Liang et al. 2021, Section 4.2, Figure 3): the family's slice."""
