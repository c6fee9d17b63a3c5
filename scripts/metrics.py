"""Rule metrics: tau1, tau2, alpha of the source's features and of its logits against the reference's
logits, on target images no source saw; cross adversarial loss at the source's PGD examples."""

from _job import log, sm  # noqa: I001 - the preamble first
from _target import target_images

import time

import torch
import torch.nn.functional as F

from advtransfer import data, metrics
from advtransfer.io import load_tensors, save_json
from advtransfer.models import inference_graph, load_classifier
from advtransfer.runtime import generator, resolve_device

p, cfg = sm.params, sm.params.metrics
device = resolve_device(p.device)
split = load_tensors(sm.input.split, required=("train_idx", "val_idx", "test_idx", "test_y"))
wall, cpu = time.perf_counter(), time.process_time()
attack = load_tensors(sm.input.attack, required=("x_adv", "chosen", "seconds"))
y = split["test_y"][attack["chosen"]]
x_attacked = target_images("test", split["test_idx"][attack["chosen"]])
unseen_train = torch.cat([split["train_idx"], split["val_idx"]])
from_train, from_test = data.metric_subset(len(unseen_train), len(split["test_idx"]), cfg["n_images"], p.seed)
x = torch.cat([target_images("train", unseen_train[from_train]), target_images("test", split["test_idx"][from_test])])
source = load_classifier(sm.input.source)
reference = load_classifier(sm.input.reference).to(device)
reference_graph = inference_graph(reference, "logits").to(device)
values = {}
for output in ("features", "logits"):  # the theory's f_S (what the probe stacks on), the paper code's
    result = metrics.transferability(  # on inference graphs: same functions, cheaper jvp / vjp
        inference_graph(source, output).to(device), reference_graph, x.to(device),
        method="auto", tol=cfg["tol"], max_iter=cfg["max_iter"], batch_size=cfg["batch_size"],
        linearize=True, generator=generator(p.seed),
    )  # fmt: skip
    values.update({
        f"tau1_{output}": result.tau1,
        f"tau2_{output}": result.tau2,
        f"tau1_tau2_{output}": result.tau1 * result.tau2,
        f"alpha_{output}": result.alpha,
        f"lambda_s_{output}": result.lambda_s_x.max(),
        f"lanczos_iterations_{output}": result.iterations,
    })  # fmt: skip
    if output == "features":
        feature_dim = result.align.shape[1]  # m: A is (d, m)
        values["lambda_t"] = result.lambda_t_x.max()
# The unsuffixed tau1, tau2, tau1_tau2, alpha, lambda_s are the features variant (the theory's f_S).
values.update({k: values[f"{k}_features"] for k in ("tau1", "tau2", "tau1_tau2", "alpha", "lambda_s")})
underdetermined = len(x) < 5 * feature_dim
if underdetermined:
    log.warning(
        "tau2 at the features: A is fitted from N = %d images for m = %d feature dimensions (N < 5 m): "
        "the alignment is under-determined; the logits variant is not", len(x), feature_dim,
    )  # fmt: skip
with torch.no_grad():
    logits_adv = torch.cat([reference(b.to(device)).cpu() for b in attack["x_adv"].split(500)])
    logits_clean = torch.cat([reference(b.to(device)).cpu() for b in x_attacked.split(500)])
values.update({
    "cross_adv_loss": metrics.cross_adversarial_loss(logits_adv, y),
    "reference_adv_accuracy": (logits_adv.argmax(1) == y).double().mean(),
    "reference_clean_accuracy": (logits_clean.argmax(1) == y).double().mean(),
    "reference_clean_loss": F.cross_entropy(logits_clean.double(), y),
    "n_images": len(y),
    "n_metric_images": len(x),
    "feature_dim": feature_dim,
    "features_underdetermined": float(underdetermined),
    # what tau costs (model selection): this job and the attack whose examples it read
    "metrics_wall_seconds": time.perf_counter() - wall,
    "metrics_cpu_seconds": time.process_time() - cpu,
    "attack_wall_seconds": attack["seconds"][0],
    "attack_cpu_seconds": attack["seconds"][1],
})  # fmt: skip
log.info(" ".join(f"{k}={float(v):.4g}" for k, v in values.items()))
save_json(sm.output[0], {k: float(v) for k, v in values.items()})
