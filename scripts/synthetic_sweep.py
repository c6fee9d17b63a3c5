"""Rule synthetic_sweep: every Figure 2 quantity for one V (seed), every t, on both samples D."""

from _job import log, sm  # noqa: I001 - the preamble first

import pandas as pd
from tqdm import tqdm

from advtransfer import synthetic
from advtransfer.attacks import pgd_step
from advtransfer.io import load_json, load_model, load_tensors, save_csv
from advtransfer.models import SigmoidMLP
from advtransfer.runtime import generator

seed = sm.params.seed
data = synthetic.RBFData(**load_tensors(sm.input.data, required=synthetic.RBF_TENSORS))
arch = load_json(sm.input.info)["architecture"]
target = load_model(sm.input.model, SigmoidMLP(**arch).double())
direction = synthetic.draw_perturbation(target, half_range=sm.params.half_range, generator=generator(seed))
attack = sm.params.attack
rows = []
for index, t in enumerate(tqdm(sm.params.t, desc=f"seed {seed}", mininterval=5)):
    source = synthetic.perturbed_source(target, direction, t)
    for split in synthetic.SPLITS:
        values = synthetic.sweep_point(
            target,
            source,
            data,
            split=split,
            attack_norm=attack["norm"],
            attack_eps=attack["eps"],
            attack_steps=attack["steps"],
            attack_step_size=pgd_step(attack, attack["eps"], 0.25),
            generator=generator(1_000_003 * seed + index),
        )
        log.info("t=%.3f %s %s", t, split, " ".join(f"{k}={v:.4g}" for k, v in values.items()))
        rows.append({"t": float(t), "seed": seed, "split": split, **values})
save_csv(sm.output[0], pd.DataFrame(rows))
