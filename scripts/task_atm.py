"""Rule task_atm: the adversarial transferability matrix (Section 4.4, appendix): every task network's PGD
examples (on its own prediction) scored by every task's loss, per image; per target task the tournament
of the sources and its principal eigenvector (ordinal normalisation); one matrix per eps."""

from _job import log, sm  # noqa: I001 - the preamble first
from _tasks import inputs_and_targets, models, parts, zoo_images

import pandas as pd

from advtransfer.affinity import transfer_matrix
from advtransfer.io import save_csv, save_tensors
from advtransfer.runtime import generator
from advtransfer.tasks import transfer_gains
from advtransfer.zoo import zoo_gains

p = sm.params
networks = models(p.zoo)
if p.zoo:  # no labels: every network's loss is taken against its own clean prediction
    x = zoo_images()[: p.attack["n_images"]]
    outputs = {e["name"]: e["output"] for e in p.zoo}
else:  # the shapes world: every task's loss against its true targets
    data = inputs_and_targets(parts()["test"], p.tasks, limit=p.attack["n_images"])
    inputs, targets = {t: v[0] for t, v in data.items()}, {t: v[1] for t, v in data.items()}
rows, saved = [], {}
for eps in p.attack["eps"]:
    if p.zoo:
        gains = zoo_gains(networks, outputs, x, eps, p.attack["steps"], generator(p.seed))
    else:
        gains = transfer_gains(networks, inputs, targets, eps, p.attack["steps"], generator(p.seed))
    matrix = transfer_matrix(gains.double().numpy())
    saved[f"gains_eps{eps:g}"] = gains
    for a, source in enumerate(p.tasks):
        for b, target in enumerate(p.tasks):
            rows.append(dict(eps=eps, source=source, target=target, value=float(matrix[a, b]),
                             mean_gain=float(gains[a, b].mean()), n_images=gains.shape[2]))  # fmt: skip
    log.info("eps %g: mean loss increase per target (own attack on the diagonal):\n%s", eps,
             pd.DataFrame(gains.mean(2).numpy(), index=p.tasks, columns=p.tasks).round(4).to_string())  # fmt: skip
save_tensors(sm.output.gains, saved, metadata={"tasks": list(p.tasks)})
save_csv(sm.output.matrix, pd.DataFrame(rows))
