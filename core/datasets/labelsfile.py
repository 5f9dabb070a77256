"""StyleGAN2-ADA's ``dataset.json``: class labels for the images of a folder or zip archive,
``{"labels": [["00000/img00000000.png", 6], ...]}`` (or ``"labels": null``), names relative to
the root with ``/``. gantk conditions on class indices: StyleGAN's non-class label vectors are
refused with a paragraph."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from ..base.errors import DataError
from ..base.safeio import is_regular
from .decode import open_regular

LABELS_FILE = "dataset.json"
MAX_CLASSES = 100_000
MAX_LABELS_BYTES = 256 * 2**20


def labels_bytes(root: Path, zf: zipfile.ZipFile | None) -> bytes | None:
    where = f"{root}:{LABELS_FILE}" if zf is not None else str(root / LABELS_FILE)
    if zf is not None:
        try:
            info = zf.getinfo(LABELS_FILE)
        except KeyError:
            return None
        size = info.file_size
    else:
        path = root / LABELS_FILE
        if not path.exists():
            return None
        size = path.stat().st_size if is_regular(path) else 0
    if size > MAX_LABELS_BYTES:
        raise DataError(f"the labels file is {size:,} bytes, more than gantk reads "
                        f"({MAX_LABELS_BYTES:,})", where=where, fix="check the file.")
    try:
        if zf is not None:
            return zf.read(LABELS_FILE)
        with open_regular(root / LABELS_FILE, where=where) as fp:
            return fp.read(MAX_LABELS_BYTES + 1)
    except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
        raise DataError(f"cannot read the labels file ({exc})", where=where,
                        fix="repair the archive or the file.") from None


def parse_labels(raw: bytes, where: str) -> dict[str, int] | None:
    """StyleGAN2-ADA's ``{"labels": [[name, class index], ...] or null}`` -> {name: label}."""
    fix = ('write it as {"labels": [["00000/img00000000.png", 6], ...]} (class indices 0, 1, ...), '
           'or set data.labels = "none" to train unlabelled.')
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"the labels file is not valid JSON ({exc})", where=where, fix=fix) from None
    if not isinstance(data, dict) or "labels" not in data:
        raise DataError("the labels file has no 'labels' key", where=where, fix=fix)
    entries = data["labels"]
    if entries is None:
        return None
    if not isinstance(entries, list):
        raise DataError("'labels' must be a list of [file name, class index] pairs", where=where,
                        fix=fix)
    out: dict[str, int] = {}
    for k, entry in enumerate(entries):
        ok = isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)
        label = entry[1] if ok else None
        if isinstance(label, list):
            raise DataError(f"labels[{k}] is a vector ({str(label)[:60]}); gantk conditions on "
                            "class indices, not StyleGAN's non-class label vectors", where=where,
                            fix=fix)
        if not ok or isinstance(label, bool) or not isinstance(label, int) \
                or not 0 <= label < MAX_CLASSES:
            raise DataError(f"labels[{k}] is {str(entry)[:80]}, not [file name, class index] "
                            f"with an index from 0 to {MAX_CLASSES - 1}", where=where, fix=fix)
        out[entry[0].replace("\\", "/")] = label
    return out
