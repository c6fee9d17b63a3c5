"""Rule synthetic_data: draw the Section 4.1 regression data set."""

from _job import log, sm  # noqa: I001 - the preamble first

from advtransfer import synthetic
from advtransfer.io import save_json, save_tensors
from advtransfer.runtime import generator

params = sm.params.data
data = synthetic.make_rbf_data(**params, generator=generator(sm.params.seed))
log.info("train %s, test %s, input scale %.4f", tuple(data.x_train.shape), tuple(data.x_test.shape), data.input_scale)
save_tensors(sm.output.data, data.tensors(), metadata={"seed": sm.params.seed, **params})
save_json(
    sm.output.info,
    {
        "seed": sm.params.seed,
        "config": dict(params),
        "input_scale": data.input_scale,
        "n_train": len(data.x_train),
        "n_test": len(data.x_test),
        "max_input_norm": float(data.x_train.norm(dim=1).max().clamp_min(data.x_test.norm(dim=1).max())),
    },
)
