"""Knowledge transfer among attributes (Liang et al. 2021, Section 4.3, Table 1): the family's slice."""
