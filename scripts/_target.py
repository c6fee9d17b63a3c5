"""The target task's images for the attack, metrics and probe rules (params target, root, channels,
image_size): one place for the load the three repeat."""

from _job import sm

from advtransfer.data import load_images


def target_images(part, indices):
    """Model inputs of ``indices`` of the target task's ``part`` ('train' or 'test'), in its domain."""
    p = sm.params
    return load_images(
        p.target["dataset"], p.root, part, indices,
        channels=p.channels, size=p.image_size, domain=p.target["domain"], seed=p.target["domain_seed"],
    )  # fmt: skip
