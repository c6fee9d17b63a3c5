"""Rule dataset: make a data set available under data.root (mirrors, then download), checksums verified."""

import _library_path  # noqa: F401 - this checkout's advtransfer first on sys.path

from advtransfer import data
from advtransfer.io import save_json
from advtransfer.runtime import configure

sm = snakemake  # noqa: F821 - injected by Snakemake
log = configure(sm.log[0], sm.threads)
name = sm.wildcards.dataset
folder = data.ensure_dataset(name, sm.params.root, mirrors=sm.params.mirrors, download=sm.params.download)
files = [str(path) for path in data.dataset_files(name, sm.params.root)]
log.info("%s ready in %s (%d files verified)", name, folder, len(files))
save_json(sm.output[0], {"dataset": name, "root": sm.params.root, "folder": str(folder), "files": files})
