"""Rule dataset: make a data set available under data.root (mirrors, then download), checksums verified;
a generated one (the shapes world) is rendered, a shared one (CelebA) decoded, and cached there once."""

from _job import log, sm  # noqa: I001 - the preamble first

from advtransfer import data
from advtransfer.io import save_json
from advtransfer.names import is_imagefolder

name = sm.params.name
folder = data.ensure_dataset(name, sm.params.root, mirrors=sm.params.mirrors, download=sm.params.download)
files = [str(path) for path in data.dataset_files(name, sm.params.root)]
entry = None if is_imagefolder(name) else data.dataset_entry(name)
if entry is not None and (entry.images or not entry.files):
    # generated (digits, the shapes world) or shared by several labellings (CelebA): made or decoded and
    # cached once, here, rather than by every job that reads it
    for split in data.SPLITS:
        images, _, _ = data.load_split(name, sm.params.root, split)
        log.info("%s %s split: %d images", name, split, len(images))
log.info("%s ready in %s (%d files verified)", name, folder, len(files))
marker = {"dataset": name, "root": sm.params.root, "folder": str(folder), "files": files}
if is_imagefolder(name):  # the folder's content, so that a changed image changes this marker and what reads it
    from advtransfer.data.folder import imagefolder_manifest

    marker["manifest_sha256"] = imagefolder_manifest(name)
save_json(sm.output[0], marker)
