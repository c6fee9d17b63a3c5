"""Added value over the design: does a score rank sources that share their class overlap (a de-confounded,
crossed design)? The family's slice: jobs, claims, figures."""
