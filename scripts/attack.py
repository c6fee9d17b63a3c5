"""Rule attack: PGD (Linf, untargeted on the source's own prediction, random start) on target test images."""

from _job import log, sm  # noqa: I001 - the preamble first
from _target import target_images

import time

import torch
from tqdm import tqdm

from advtransfer import data
from advtransfer.attacks import own_prediction_objective, pgd, pgd_step
from advtransfer.io import load_tensors, save_tensors
from advtransfer.models import load_classifier
from advtransfer.runtime import generator, resolve_device

p, attack = sm.params, sm.params.attack
device = resolve_device(p.device)
split = load_tensors(sm.input.split, required=("test_idx", "test_y"))
chosen = data.evaluation_subset(len(split["test_idx"]), attack["n_images"], seed=p.seed)
x = target_images("test", split["test_idx"][chosen])
source = load_classifier(sm.input.source).to(device)
gen = generator(p.seed)
wall, cpu = time.perf_counter(), time.process_time()
adversarial = []
for batch in tqdm(x.split(250), desc="PGD", mininterval=10):
    batch = batch.to(device)
    adversarial.append(
        pgd(own_prediction_objective(source, batch), batch, eps=attack["eps"], steps=attack["steps"],
            step_size=pgd_step(attack, attack["eps"]), norm="linf", bounds=(0.0, 1.0), generator=gen).cpu()
    )  # fmt: skip
x_adv = torch.cat(adversarial)
seconds = torch.tensor([time.perf_counter() - wall, time.process_time() - cpu], dtype=torch.float64)
log.info("%d images, max |delta| %.4f (eps %.4f)", len(x_adv), float((x_adv - x).abs().max()), attack["eps"])
save_tensors(
    sm.output[0],
    # chosen: into test_idx; indices: into the test split; seconds: the attack's wall and CPU time (model selection's
    # cost of tau)
    {"x_adv": x_adv, "chosen": chosen, "indices": split["test_idx"][chosen], "seconds": seconds},
    metadata=dict(attack),
)
