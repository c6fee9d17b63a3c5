"""The CUDA code paths, each checked against the CPU result; skipped cleanly where CUDA is absent (CI).

Covered: training (cudnn.benchmark, channels_last, bfloat16 autocast), the virtual attack and the tau
metrics (Lanczos with a traced jvp on inference graphs, J formed from vjps), PGD, feature
extraction + linear probe, the robust training schemes and randomized smoothing (noise drawn on the
device), APGD, and the benchmark suite's CUDA branch (synchronised timers, device memory).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from advtransfer import metrics
from advtransfer.attacks import own_prediction_objective, pgd, virtual_attack
from advtransfer.models import build_model, inference_graph
from advtransfer.probe import extract_features, fit_linear_probe
from advtransfer.train import TrainContext, TrainSettings, evaluate, train_classifier
from tests.workflow_helpers import REPO

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CUDA = torch.device("cuda")


def _model(name="small_cnn", classes=4, channels=1, size=28, seed=0):
    torch.manual_seed(seed)
    return build_model(name, classes, channels, size).eval()


def _images(n, channels=1, size=28, seed=1):
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(seed))


def _task(n=256, seed=0):
    """Four classes of noisy 28x28 images: one bright quadrant each."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 4
    x = torch.rand(n, 1, 28, 28, generator=g) * 0.4
    for k in range(4):
        r, c = divmod(k, 2)
        x[y == k, :, 14 * r : 14 * (r + 1), 14 * c : 14 * (c + 1)] += 0.5
    return x.clamp(0, 1), y


def test_training_on_cuda_learns_and_returns_the_model_on_the_device():
    """channels_last + bfloat16 autocast (where supported) still learn the task; selection as on the CPU."""
    x, y = _task()
    model = _model()
    res = train_classifier(model, x[:192], y[:192], x[192:], y[192:],
                           TrainSettings(epochs=3, batch_size=32, lr=0.05, momentum=0.9, weight_decay=5e-4),
                           TrainContext(seed=0, device="cuda", progress=False))  # fmt: skip
    assert all(p.device.type == "cuda" for p in model.parameters()) and not model.training
    assert res.best_val_accuracy >= 0.9
    acc, _ = evaluate(model, x[192:], y[192:], 64, "cuda")
    assert acc == pytest.approx(res.best_val_accuracy)
    assert all(t.device.type == "cpu" for t in res.best_state.values())


def test_virtual_attack_on_cuda_matches_the_cpu():
    """Lanczos (plain and traced jvp) on features and the formed-J path on logits, on the GPU, agree with
    the CPU's exact SVD."""
    net = _model()
    x = _images(8)
    exact = {
        "features": virtual_attack(net.features, x, method="exact"), "logits": virtual_attack(net, x, method="exact")
    }
    net.to(CUDA)
    cases = (("features", net.features, "lanczos", False), ("features", net.features, "lanczos", True),
             ("logits", net, "auto", False))  # fmt: skip
    for output, f, method, linearize in cases:
        att = virtual_attack(f, x.to(CUDA), method=method, tol=1e-5, linearize=linearize,
                             generator=torch.Generator().manual_seed(0))  # fmt: skip
        ref = exact[output]
        assert att.delta.device.type == "cuda"
        cos = (att.delta.cpu().double() * ref.delta.double()).sum(1).abs()
        assert (cos >= 0.999).all(), (output, method, linearize)
        torch.testing.assert_close(att.sigma1.cpu(), ref.sigma1, rtol=1e-3, atol=0)


def test_transferability_on_cuda_matches_the_cpu():
    """The metrics rule's path (inference graphs, auto, linearize) gives the CPU's tau1 / tau2 / alpha."""
    source, reference = _model(seed=0), _model(seed=1)
    x = _images(64)
    kwargs = dict(method="auto", tol=1e-5, max_iter=100, batch_size=32, linearize=True)
    cpu = metrics.transferability(inference_graph(source, "features"), inference_graph(reference, "logits"), x,
                                  generator=torch.Generator().manual_seed(0), **kwargs)  # fmt: skip
    gpu = metrics.transferability(inference_graph(source, "features").to(CUDA),
                                  inference_graph(reference, "logits").to(CUDA), x.to(CUDA),
                                  generator=torch.Generator().manual_seed(0), **kwargs)  # fmt: skip
    for name in ("tau1", "tau2", "alpha"):
        assert float(getattr(gpu, name)) == pytest.approx(float(getattr(cpu, name)), abs=1e-3), name


def test_pgd_on_cuda_matches_the_cpu():
    """Same objective, same start: the GPU's PGD iterates stay within the ball and match the CPU's."""
    net = _model()
    x = _images(8)
    cpu = pgd(own_prediction_objective(net, x), x, eps=0.1, steps=5, step_size=0.025, random_start=False)
    gpu_net = net.to(CUDA)
    gpu = pgd(own_prediction_objective(gpu_net, x.to(CUDA)), x.to(CUDA), eps=0.1, steps=5, step_size=0.025,
              random_start=False)  # fmt: skip
    assert gpu.device.type == "cuda" and (gpu.cpu() - x).abs().max() <= 0.1 + 1e-6
    # sign steps can flip where a gradient entry is ~0; nearly all entries must agree
    assert ((gpu.cpu() - cpu).abs() < 1e-4).double().mean() >= 0.99


def test_features_and_probe_on_cuda_match_the_cpu():
    x, y = _task(128)
    net = _model()
    feats_cpu = extract_features(net, x, batch_size=32, device="cpu")
    feats_gpu = extract_features(net, x, batch_size=32, device="cuda")
    assert feats_gpu.device.type == "cpu"  # returned on the CPU, like the CPU path
    torch.testing.assert_close(feats_gpu, feats_cpu, rtol=1e-3, atol=1e-4)
    a = fit_linear_probe(feats_cpu, y, max_iter=100, device="cpu")
    b = fit_linear_probe(feats_cpu, y, max_iter=100, device="cuda")
    assert a.evaluate(feats_cpu, y)[0] == pytest.approx(b.evaluate(feats_cpu, y)[0], abs=0.02)


@pytest.mark.slow
@pytest.mark.parametrize("objective,params", [("pgd_at", {"eps": 0.1, "steps": 2, "step_size": 0.05}),
                                              ("noise", {"sigma": 0.2}), ("free_at", {"eps": 0.1})])
def test_robust_training_schemes_train_on_cuda(objective, params):
    x, y = _task(128)
    model = _model()
    settings = TrainSettings(epochs=2, batch_size=32, lr=0.05, momentum=0.9, weight_decay=0.0,
                             replays=2 if objective == "free_at" else 1)  # fmt: skip
    context = TrainContext(seed=0, device=CUDA, progress=False, objective=objective, objective_params=params)
    result = train_classifier(model, x[:96], y[:96], x[96:], y[96:], settings, context)
    assert next(model.parameters()).device.type == "cuda" and result.best_val_accuracy > 0.4


def test_smoothing_counts_on_cuda_are_binomially_close_to_the_cpu():
    from advtransfer import smoothing

    model, x = _model(), _images(4)
    n = 2000
    counts = {d: smoothing.class_counts(model.to(d), x, sigma=0.25, n=n, batch_size=500,
                                        generator=torch.Generator(device=d).manual_seed(0)).double() / n
              for d in ("cpu", "cuda")}  # fmt: skip
    assert torch.allclose(counts["cpu"], counts["cuda"], atol=5 * 0.5 / n**0.5)  # different streams: 5 SE


def test_apgd_on_cuda_stays_in_the_ball():
    from advtransfer.attacks import apgd

    model, (x, y) = _model().to(CUDA), _task(32)
    x_adv = apgd(model, x, y, eps=0.05, n_iter=5)
    assert x_adv.device.type == "cuda" and (x_adv.cpu() - x).abs().max() <= 0.05 + 1e-6


def test_benchmark_suite_runs_on_cuda(tmp_path):
    pytest.importorskip("torchattacks", reason="the pgd case compares with torchattacks (make test installs it)")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--device", "cuda", "--out", str(tmp_path),
         "--only", "virtual_attack,transferability,pgd,training,probe,scaling"],
        cwd=REPO, capture_output=True, text=True, timeout=900,  # a hang guard, not a timing assertion
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    for case in ("virtual_attack", "transferability", "pgd", "training", "probe", "scaling"):
        result = json.loads((tmp_path / f"{case}.json").read_text())
        assert result["device"].startswith("cuda"), case
