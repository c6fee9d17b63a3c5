"""Multi-order interactions (Ren et al. 2021) of the robustness family's models: the family's slice."""
