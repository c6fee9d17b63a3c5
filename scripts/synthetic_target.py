"""Rule synthetic_target: train the reference model f_T on the training split."""

from _job import log, sm  # noqa: I001 - the preamble first

import time

from advtransfer import metrics, synthetic
from advtransfer.io import load_tensors, save_model

data = synthetic.RBFData(**load_tensors(sm.input.data, required=synthetic.RBF_TENSORS))
start = time.perf_counter()
model, losses = synthetic.make_target(data, **sm.params.target, seed=sm.params.seed)
for step in range(0, len(losses), max(1, len(losses) // 20)):
    log.info("step %5d  train loss %.5f", step, losses[step])
train_loss = float(metrics.squared_error(model(data.x_train), data.y_train))
test_loss = float(metrics.squared_error(model(data.x_test), data.y_test))
variance = float(metrics.squared_error(data.y_test.mean(0, keepdim=True).expand_as(data.y_test), data.y_test))
log.info("f_T: train %.4f, held-out %.4f (held-out variance %.4f)", train_loss, test_loss, variance)
save_model(
    sm.output.model,
    model,
    {
        "seed": sm.params.seed,
        "config": dict(sm.params.target),
        "architecture": {
            "n_in": data.x_train.shape[1], "n_hidden": model.hidden.out_features, "n_out": model.head.out_features
        },
        "train_mse": train_loss,
        "test_mse": test_loss,
        "test_relative_mse": test_loss / variance,
        "wall_seconds": time.perf_counter() - start,
    },
)
