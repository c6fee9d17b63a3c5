"""The tasks family's tables as Markdown and LaTeX (no torch)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from advtransfer.tables import latex, latex_escape, markdown, number


def task_tables(matrices: dict[str, np.ndarray], tasks: list[str], kinds: dict[str, str], trees: pd.DataFrame,
                notes: list[str] | tuple = (), reference: str = "knowledge-transfer affinity") -> dict[str, str]:
    """The tasks family's tables as ``{"md", "tex"}`` (Section 4.4): each N x N matrix (rows: source task,
    columns: target task; ``matrices``: caption -> matrix), then the agreement of each adversarial view's
    tree with the ``reference`` tree (``trees``, advtransfer.affinity.compare_trees), then ``notes``."""
    header = ["source \\ target", *tasks]
    md, tex = [], []
    for caption, matrix in matrices.items():
        rows = [[f"{s} ({kinds[s]})", *(f"{v:.3f}" for v in row)] for s, row in zip(tasks, matrix)]
        md += [f"**{caption}**", markdown(header, rows, "l" + "r" * len(tasks))]
        tex_rows = [[latex_escape(r[0]), *r[1:]] for r in rows]
        tex += ["% " + caption + "\n" + latex([latex_escape(h) for h in header], tex_rows, "l" + "r" * len(tasks)),
                r"\medskip"]  # fmt: skip
    caption = (f"Agreement with the tree of the {reference}: adjusted Rand index of the two trees cut into k clusters; "
               "inner-category entropy of each tree's clusters against the known kinds (nats; 0 = pure); Mantel: "
               f"Spearman correlation of the off-diagonal entries with the {reference} matrix, "
               "permutation p-value.")  # fmt: skip
    head = ["view", "k", "ARI vs reference tree", "entropy (view)", "entropy (reference)", "Mantel rho", "Mantel p"]
    rows = [[r["view"], str(int(r["k"])), number(r["ari"], 2), number(r["entropy"], 2),
             number(r["reference_entropy"], 2), number(r["mantel"], 2), number(r["mantel_p"], 3)]
            for _, r in trees.iterrows()]  # fmt: skip
    md += [f"**{caption}**", markdown(head, rows, "lrrrrrr")]
    tex += ["% " + caption + "\n" + latex(head, [[latex_escape(c) for c in r] for r in rows], "lrrrrrr")]
    md += [f"Note: {note}" for note in notes]
    tex += [f"Note: {latex_escape(note)}" for note in notes]
    return {"md": "\n\n".join(md) + "\n", "tex": "\n\n".join(tex) + "\n"}
