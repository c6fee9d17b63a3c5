"""Rule metrics: tau1, tau2 (source features -> reference logits), alpha, cross adversarial loss."""

from _job import log, sm  # noqa: I001 - the preamble first
from _target import target_images

import torch
import torch.nn.functional as F

from advtransfer import metrics
from advtransfer.io import load_tensors, save_json
from advtransfer.models import inference_graph, load_classifier
from advtransfer.runtime import generator, resolve_device

p, cfg = sm.params, sm.params.metrics
device = resolve_device(p.device)
split = load_tensors(sm.input.split, required=("test_idx", "test_y"))
attack = load_tensors(sm.input.attack, required=("x_adv", "chosen"))
chosen = attack["chosen"]
y = split["test_y"][chosen]
x = target_images("test", split["test_idx"][chosen])
reference = load_classifier(sm.input.reference).to(device)
result = metrics.transferability(  # on inference graphs: same functions, cheaper jvp / vjp
    inference_graph(load_classifier(sm.input.source), "features").to(device),
    inference_graph(reference, "logits").to(device),
    x.to(device), method="auto", tol=cfg["tol"], max_iter=cfg["max_iter"], batch_size=cfg["batch_size"],
    linearize=True, generator=generator(p.seed),
)  # fmt: skip
with torch.no_grad():
    logits_adv = torch.cat([reference(b.to(device)).cpu() for b in attack["x_adv"].split(500)])
    logits_clean = torch.cat([reference(b.to(device)).cpu() for b in x.split(500)])
values = {
    "tau1": result.tau1,
    "tau2": result.tau2,
    "tau1_tau2": result.tau1 * result.tau2,
    "alpha": result.alpha,
    "cross_adv_loss": metrics.cross_adversarial_loss(logits_adv, y),
    "reference_adv_accuracy": (logits_adv.argmax(1) == y).double().mean(),
    "reference_clean_accuracy": (logits_clean.argmax(1) == y).double().mean(),
    "reference_clean_loss": F.cross_entropy(logits_clean.double(), y),
    "lambda_s": result.lambda_s_x.max(),
    "lambda_t": result.lambda_t_x.max(),
    "lanczos_iterations": result.iterations,
    "n_images": len(y),
}
log.info(" ".join(f"{k}={float(v):.4g}" for k, v in values.items()))
save_json(sm.output[0], {k: float(v) for k, v in values.items()})
