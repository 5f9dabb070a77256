"""Data that could hang, exhaust or derail training (issue 30): only regular files are opened, a
pixel limit is checked before decoding, a worker's failure is one paragraph, and a bookkeeping
flag (data.download) does not make a run a different stack."""

from __future__ import annotations

import os
import struct
import threading
import zlib

import numpy as np
import pytest
from PIL import Image

from gantk import DataError, Pipeline
from gantk.datasets.decode import DEFAULT_MAX_PIXELS, decode, open_regular
from gantk.datasets.imagesets import FolderParams, folder_census, load_folder
from gantk.datasets.streaming import ImageFiles, LoaderStream


def _png(path, width: int, height: int) -> None:
    """A tiny PNG whose header declares width x height (its pixel data is a few bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0"))
                     + chunk(b"IEND", b""))


def _folder(root, n: int = 6, size=(12, 12)):
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(root / f"{i}.png")
    return root


def _in_thread(fn, timeout: float = 20.0):
    """Run fn in a thread; fail (rather than hang the suite) if it does not return."""
    box: dict = {}

    def go():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "reading the data blocked (a FIFO was opened)"
    if "error" in box:
        raise box["error"]
    return box.get("value")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_named_like_an_image_is_skipped_and_named(tmp_path):
    root = _folder(tmp_path / "imgs")
    os.mkfifo(root / "evil.png")
    x, _ = _in_thread(lambda: load_folder(FolderParams(root=str(root), resolution=8)))
    assert x.shape == (6, 3, 8, 8)
    line = folder_census(FolderParams(root=str(root), resolution=8)).line()
    assert "6 images" in line and "skipped 1 entries that are not regular files (evil.png)" in line


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_file_swapped_for_a_fifo_after_listing_is_refused_not_waited_on(tmp_path):
    root = _folder(tmp_path / "imgs", n=2)
    files = ImageFiles(sorted(root.iterdir()), 8, 3)
    os.remove(root / "1.png")
    os.mkfifo(root / "1.png")
    with pytest.raises(DataError) as err:
        _in_thread(lambda: files[1])
    text = err.value.paragraph()
    assert "1.png" in text and "FIFO" in text and "regular file" in text
    with pytest.raises(DataError, match="not a regular file"):
        _in_thread(lambda: open_regular(root / "1.png"))


@pytest.mark.parametrize("side", [30000, 12000])
def test_a_huge_declared_size_is_refused_before_decoding(tmp_path, side):
    bomb = tmp_path / "bomb.png"
    _png(bomb, side, side)
    assert bomb.stat().st_size < 100
    with pytest.raises(DataError) as err, open(bomb, "rb") as fp:
        decode(fp, str(bomb), resolution=8, channels=3)
    text = err.value.paragraph()
    assert str(bomb) in text and f"{DEFAULT_MAX_PIXELS:,}" in text and "data.max_pixels" in text
    if side == 12000:  # PIL's header is read: the exact size is named
        assert "12000 x 12000 = 144,000,000 pixels" in text
    else:  # past PIL's own hard limit PIL stops first and names the count
        assert "900,000,000 pixels" in text
    assert "Decompression" not in text and "Traceback" not in text


def test_the_pixel_limit_is_a_setting_and_applies_to_folders(tmp_path):
    root = _folder(tmp_path / "imgs", n=2, size=(30, 20))
    with pytest.raises(DataError, match=r"20 x 30 = 600 pixels.*limit of 500"):
        load_folder(FolderParams(root=str(root), resolution=8, max_pixels=500))
    x, _ = load_folder(FolderParams(root=str(root), resolution=8, max_pixels=600))
    assert x.shape == (2, 3, 8, 8)


def test_a_corrupt_file_under_workers_is_one_paragraph(tmp_path):
    root = _folder(tmp_path / "imgs", n=8)
    (root / "3.png").write_bytes((root / "3.png").read_bytes()[:60])  # truncated
    files = ImageFiles(sorted(root.iterdir()), 8, 3)
    stream = LoaderStream(files, None, batch_size=8, seed=0, workers=2)
    with pytest.raises(DataError) as err:
        next(stream)
    text = str(err.value)
    assert "3.png" in text and "remove or repair the file" in text
    assert "Traceback" not in text and "worker" not in text and text.count("\n") == 0


def test_a_corrupt_file_in_training_is_a_data_error_naming_it(tmp_path):
    root = _folder(tmp_path / "imgs", n=8)
    (root / "5.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    spec = {"stack": "backbone=dcgan + loss=ns + data=image_folder", "seed": 0,
            "backbone": {"width": 4, "latent_dim": 8},
            "data": {"root": str(root), "resolution": 16, "in_memory": False},
            "train": {"steps": 2, "batch_size": 8, "sample_every": 0, "ckpt_every": 0,
                      "workers": 0}}  # under workers: the test above
    with pytest.raises(DataError, match=r"5\.png': not in an image format PIL can read") as err:
        Pipeline.from_spec(spec, device="cpu").train(progress=False)
    assert "BufferedReader" not in str(err.value)  # PIL's text names the file object


def _idx(path, magic: int, dims: tuple[int, ...], data: bytes) -> None:
    path.write_bytes(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + data)


def test_a_run_trained_with_download_true_samples_and_resumes(tmp_path):
    raw = tmp_path / "data" / "MNIST" / "raw"  # torchvision's layout, so nothing is downloaded
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 32), ("t10k", 8)):
        _idx(raw / f"{prefix}-images-idx3-ubyte", 0x803, (n, 28, 28),
             rng.integers(0, 255, n * 28 * 28, dtype=np.uint8).tobytes())
        _idx(raw / f"{prefix}-labels-idx1-ubyte", 0x801, (n,), bytes(i % 10 for i in range(n)))
    spec = {"stack": "backbone=dcgan + loss=ns + data=mnist", "seed": 0,
            "backbone": {"width": 4, "latent_dim": 8},
            "data": {"root": str(tmp_path / "data"), "resolution": 16, "download": True},
            "train": {"steps": 2, "batch_size": 8, "sample_every": 0, "ckpt_every": 2}}
    run = tmp_path / "run"
    Pipeline.from_spec(spec, device="cpu").train(out=run, progress=False)
    loaded = Pipeline.load(run, device="cpu")  # was: "trained with a different data"
    assert loaded.step == 2 and loaded.sample(4).shape == (4, 1, 16, 16)
    spec["data"]["download"] = False  # the same stack: resuming with the flag off is allowed
    spec["train"]["steps"] = 3
    resumed = Pipeline.from_spec(spec, device="cpu")
    resumed.train(out=run, progress=False)
    assert resumed.step == 3


def test_a_pixel_bomb_inside_a_zip_names_the_member(tmp_path):
    import zipfile

    _png(tmp_path / "bomb.png", 30000, 30000)
    good = _folder(tmp_path / "imgs", n=2)
    archive = tmp_path / "ds.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(good / "0.png", "00000/img00000000.png")
        zf.write(tmp_path / "bomb.png", "00000/img00000001.png")
    with pytest.raises(DataError) as err:
        load_folder(FolderParams(root=str(archive), resolution=8))
    text = err.value.paragraph()
    assert f"{archive}:00000/img00000001.png" in text and "data.max_pixels" in text


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_as_the_labels_file_or_the_root_is_refused_not_waited_on(tmp_path):
    root = _folder(tmp_path / "imgs", n=2)
    os.mkfifo(root / "dataset.json")
    with pytest.raises(DataError, match="dataset.json' is a FIFO"):
        _in_thread(lambda: load_folder(FolderParams(root=str(root), resolution=8)))
    os.mkfifo(tmp_path / "data.zip")
    with pytest.raises(DataError, match="neither a folder nor a regular file"):
        _in_thread(lambda: load_folder(FolderParams(root=str(tmp_path / "data.zip"))))
