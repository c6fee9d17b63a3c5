"""Rule dataset: make a data set available under data.root (mirrors, then download), checksums verified."""

from _job import log, sm  # noqa: I001 - the preamble first

from advtransfer import data
from advtransfer.io import save_json

name = sm.params.name
folder = data.ensure_dataset(name, sm.params.root, mirrors=sm.params.mirrors, download=sm.params.download)
files = [str(path) for path in data.dataset_files(name, sm.params.root)]
log.info("%s ready in %s (%d files verified)", name, folder, len(files))
save_json(sm.output[0], {"dataset": name, "root": sm.params.root, "folder": str(folder), "files": files})
