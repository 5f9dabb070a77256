"""The data formats users bring (issue 28): a StyleGAN2-ADA dataset_tool zip with dataset.json
labels, class subfolders as labels (torchvision ImageFolder semantics), a local HuggingFace
data set; and the image and label count that check and train print."""

from __future__ import annotations

import json
import sys
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from gantk import DataError, Pipeline
from gantk.datasets import hf
from gantk.datasets.imagesets import FolderParams, folder_census, folder_info, load_folder


def _image(rng, side=(14, 18)) -> Image.Image:
    return Image.fromarray(rng.integers(0, 255, (*side, 3), dtype=np.uint8))


def _classes(root, counts=(("cat", 5), ("dog", 3), ("emu", 4)), nested: bool = True):
    rng = np.random.default_rng(0)
    for name, n in counts:
        (root / name / "deeper").mkdir(parents=True)
        for i in range(n):  # class folders are searched recursively
            _image(rng).save(root / name / ("deeper" if i % 2 and nested else "") / f"{i}.png")
    return root


def _stylegan_zip(path, labels: list | None | str = "default", n: int = 12):
    """An archive laid out as StyleGAN2-ADA's dataset_tool writes it."""
    rng = np.random.default_rng(1)
    names = [f"{i // 5:05d}/img{i:08d}.png" for i in range(n)]
    with zipfile.ZipFile(path, "w") as zf:
        for name in names:
            buf = __import__("io").BytesIO()
            _image(rng).save(buf, format="PNG")
            zf.writestr(name, buf.getvalue())
        if labels == "default":
            labels = [[name, i % 3 * 2] for i, name in enumerate(names)]  # 0, 2, 4: 5 classes
        if labels != "absent":
            zf.writestr("dataset.json", json.dumps({"labels": labels}))
    return path, names


# ----------------------------------------------------------------------------- zip archives


def test_a_dataset_tool_zip_is_read_in_place_with_its_labels(tmp_path):
    archive, names = _stylegan_zip(tmp_path / "ds.zip")
    before = sorted(p.name for p in tmp_path.iterdir())
    p = FolderParams(root=str(archive), resolution=8)
    x, y = load_folder(p)
    assert x.shape == (12, 3, 8, 8) and x.dtype == torch.uint8
    assert y.tolist() == [i % 3 * 2 for i in range(12)]
    assert folder_info(p).num_classes == 5  # max + 1, as StyleGAN's label_shape
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing extracted
    line = folder_census(p).line()
    assert "12 images in zip archive" in line and "5 labels (0-4, 3 of them used) from dataset.json" in line
    # the same pixels as the same files in a folder, and through workers from the archive
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(tmp_path / "unzipped")
    flat, _ = load_folder(FolderParams(root=str(tmp_path / "unzipped"), resolution=8))
    assert torch.equal(flat, x)
    lazy, _ = load_folder(FolderParams(root=str(archive), resolution=8, in_memory=False))
    from gantk.datasets.streaming import LoaderStream
    stream = LoaderStream(lazy, y, batch_size=12, seed=0, workers=2)
    xb, yb = next(stream)  # one shuffled epoch: the same images and labels, in another order
    pixels = ((xb + 1) * 127.5).round().to(torch.uint8).flatten(1).numpy()
    got = sorted(zip(map(bytes, pixels), yb.tolist()))
    assert got == sorted(zip(map(bytes, x.flatten(1).numpy()), y.tolist()))


def test_zip_labels_null_absent_or_ignored_give_an_unlabelled_set(tmp_path):
    for labels in (None, "absent"):
        archive, _ = _stylegan_zip(tmp_path / f"{labels}.zip", labels=labels)
        p = FolderParams(root=str(archive), resolution=8)
        assert load_folder(p)[1] is None and folder_info(p).num_classes is None
        assert "unlabelled (no dataset.json labels)" in folder_census(p).line()
    archive, _ = _stylegan_zip(tmp_path / "labelled.zip")
    assert load_folder(FolderParams(root=str(archive), resolution=8, labels="none"))[1] is None
    # the shards 00000/, 00001/ become classes only when asked
    _, y = load_folder(FolderParams(root=str(archive), resolution=8, labels="folders"))
    assert y.tolist() == [0] * 5 + [1] * 5 + [2] * 2


@pytest.mark.parametrize("labels, message", [
    ("vector", "is a vector"),
    ("missing", "2 of 12 images have no label in dataset.json"),
    ("negative", "not [file name, class index]"),
    ("garbage", "not valid JSON"),
])
def test_bad_dataset_json_is_one_paragraph(tmp_path, labels, message):
    archive, names = _stylegan_zip(tmp_path / "ds.zip", labels="absent")
    table = {"vector": [[n, [0.5, 1.0]] for n in names],
             "missing": [[n, 1] for n in names[:10]],
             "negative": [[n, -1] for n in names]}.get(labels)
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("dataset.json", "{oops" if labels == "garbage" else json.dumps({"labels": table}))
    with pytest.raises(DataError) as err:
        load_folder(FolderParams(root=str(archive), resolution=8))
    text = err.value.paragraph()
    assert message in text and "dataset.json" in text and "Fix:" in text


def test_not_a_zip_and_a_missing_root_are_named(tmp_path):
    (tmp_path / "notes.zip").write_text("not an archive")
    with pytest.raises(DataError, match="not a readable zip archive"):
        load_folder(FolderParams(root=str(tmp_path / "notes.zip")))
    with pytest.raises(DataError, match="no such folder or zip archive"):
        load_folder(FolderParams(root=str(tmp_path / "nope.zip")))


# ----------------------------------------------------------------------------- class folders


def test_class_folders_follow_torchvision_image_folder(tmp_path):
    from torchvision.datasets import ImageFolder

    root = _classes(tmp_path / "animals")
    p = FolderParams(root=str(root), resolution=8)
    x, y = load_folder(p)
    ref = ImageFolder(str(root))
    assert y.tolist() == ref.targets and folder_info(p).num_classes == 3 == len(ref.classes)
    first = torch.from_numpy(np.array(Image.open(ref.samples[0][0]).convert("RGB")
                                        .crop((2, 0, 16, 14)).resize((8, 8), Image.BICUBIC)))
    assert torch.equal(x[0], first.permute(2, 0, 1))  # same order as ImageFolder's samples
    line = folder_census(p).line()
    assert "12 images in folder" in line and "3 labels (0=cat, 1=dog, 2=emu) from class folders" in line
    # labels = "none": the same images, unlabelled
    x2, y2 = load_folder(FolderParams(root=str(root), resolution=8, labels="none"))
    assert y2 is None and len(x2) == 12


def test_auto_picks_flat_when_images_sit_in_the_root_or_one_subfolder(tmp_path):
    root = _classes(tmp_path / "a", counts=(("only", 3),))  # one subfolder: not classes
    assert load_folder(FolderParams(root=str(root), resolution=8))[1] is None
    _image(np.random.default_rng(2)).save(tmp_path / "b.png")
    root = _classes(tmp_path / "b", counts=(("x", 2), ("y", 2)))
    _image(np.random.default_rng(3)).save(root / "top.png")
    p = FolderParams(root=str(root), resolution=8)
    assert load_folder(p)[1] is None and "data.labels = \"folders\" reads" in folder_census(p).line()
    p = FolderParams(root=str(root), resolution=8, labels="folders")
    assert load_folder(p)[1].tolist() == [0, 0, 1, 1]
    assert "1 image files outside the class folders ignored" in folder_census(p).line()


def test_an_empty_class_folder_is_named(tmp_path):
    root = _classes(tmp_path / "animals")
    (root / ".ipynb_checkpoints").mkdir()
    assert folder_info(FolderParams(root=str(root))).num_classes == 4  # building reads no image
    with pytest.raises(DataError) as err:  # listing (check, train) does
        folder_census(FolderParams(root=str(root)))
    text = err.value.paragraph()
    assert "'.ipynb_checkpoints'" in text and "hold no images" in text and 'labels = "none"' in text


def _conditional(data: dict) -> dict:
    return {"stack": "backbone=dcgan + loss=ns", "seed": 0,
            "backbone": {"width": 4, "latent_dim": 8, "conditional": True},
            "data": {"resolution": 16, **data},
            "train": {"steps": 2, "batch_size": 4, "sample_every": 0, "ckpt_every": 2}}


def test_a_conditional_backbone_trains_and_samples_on_class_folders_and_a_zip(tmp_path):
    root = _classes(tmp_path / "animals")
    archive, _ = _stylegan_zip(tmp_path / "ds.zip")
    for name, data in (("folders", {"name": "image_folder", "root": str(root)}),
                       ("zip", {"name": "image_folder", "root": str(archive), "in_memory": False})):
        pipe = Pipeline.from_spec(_conditional(data), device="cpu")
        pipe.train(out=tmp_path / name, progress=False)
        loaded = Pipeline.load(tmp_path / name, device="cpu")
        assert loaded.backbone.num_classes == (3 if name == "folders" else 5)
        assert loaded.sample(4, y=torch.tensor([0, 1, 2, 2])).shape == (4, 3, 16, 16)


def test_check_and_train_print_the_counts(tmp_path, cli):
    root = _classes(tmp_path / "animals")
    stack = tmp_path / "own.toml"
    stack.write_text(f'stack = "backbone=dcgan + loss=ns + data=image_folder"\n[backbone]\nwidth = 4\n'
                     f'latent_dim = 8\nconditional = true\n[data]\nroot = "{root}"\nresolution = 16\n'
                     '[train]\nsteps = 1\nbatch_size = 4\nsample_every = 0\nckpt_every = 0\n')
    code, out, err = cli("check", stack)
    assert code == 0 and "data: image_folder: 12 images in folder" in out and "3 labels" in out
    code, out, err = cli("train", stack, "--out", tmp_path / "run", "--no-progress")
    assert code == 0 and "data: image_folder: 12 images" in err and "0=cat, 1=dog, 2=emu" in err
    archive, _ = _stylegan_zip(tmp_path / "ds.zip")
    code, out, _ = cli("check", stack, "--set", f'data.root="{archive}"')
    assert code == 0 and "12 images in zip archive" in out
    code, out, _ = cli("check", tmp_path / "own.toml", "--set", f'data.root="{tmp_path / "gone"}"')
    assert code == 2 and "data.root" in out + _ and "or a .zip of them" in out + _
    code, out, _ = cli("check", "examples/stacks/digits.toml")
    assert code == 0 and "data: digits: 1,797 images; 10 labels" in out
    cifar = tmp_path / "cifar.toml"  # read from files without a census: not loaded by check
    cifar.write_text(f'stack = "backbone=dcgan + data=cifar10"\n[backbone]\nwidth = 4\n'
                     f'[data]\nroot = "{tmp_path}"\n')
    code, out, _ = cli("check", cifar)
    assert code == 0 and "data: cifar10: images: counted when training starts; 10 labels" in out


# ----------------------------------------------------------------------------- HuggingFace


def _hf_saved(path, n: int = 10, dict_split: str | None = None):
    datasets = pytest.importorskip("datasets")  # the hf extra (installed with the test extra)

    rng = np.random.default_rng(4)
    features = datasets.Features({"img": datasets.Image(),
                                  "label": datasets.ClassLabel(names=["ant", "bee", "cow"]),
                                  "caption": datasets.Value("string")})
    ds = datasets.Dataset.from_dict({"img": [_image(rng) for _ in range(n)],
                                     "label": [i % 3 for i in range(n)],
                                     "caption": [f"c{i}" for i in range(n)]}, features=features)
    (datasets.DatasetDict({dict_split: ds}) if dict_split else ds).save_to_disk(str(path))
    return path


@pytest.fixture
def fresh_hf():
    hf._open.cache_clear()
    hf._classes.cache_clear()
    yield
    hf._open.cache_clear()
    hf._classes.cache_clear()


def test_a_saved_hf_dataset_loads_with_its_labels(tmp_path, fresh_hf):
    path = _hf_saved(tmp_path / "saved")
    p = hf.HFParams(path=str(path), image_column="img", resolution=8)
    x, y = hf.load_hf(p)
    assert x.shape == (10, 3, 8, 8) and y.tolist() == [i % 3 for i in range(10)]
    assert hf.hf_info(p).num_classes == 3
    assert "10 images in HuggingFace data set" in hf.hf_census(p).line()
    assert "3 labels (0=ant, 1=bee, 2=cow) from column 'label'" in hf.hf_census(p).line()
    lazy, _ = hf.load_hf(hf.HFParams(path=str(path), image_column="img", resolution=8,
                                     in_memory=False, limit=4))
    assert len(lazy) == 4 and torch.equal(lazy.load_all(), x[:4])
    x2, y2 = hf.load_hf(hf.HFParams(path=str(path), image_column="img", resolution=8,
                                    label_column="none"))
    assert y2 is None and torch.equal(x2, x)


def test_hf_mistakes_are_one_paragraph(tmp_path, fresh_hf):
    path = _hf_saved(tmp_path / "dd", dict_split="train")
    with pytest.raises(DataError, match=r"no column 'image' \(columns: img, label, caption\)"):
        hf.hf_info(hf.HFParams(path=str(path)))
    with pytest.raises(DataError, match="'caption' is .* not an Image feature"):
        hf.hf_info(hf.HFParams(path=str(path), image_column="caption"))
    with pytest.raises(DataError, match="not class labels"):
        hf.hf_info(hf.HFParams(path=str(path), image_column="img", label_column="caption"))
    with pytest.raises(DataError, match="no split 'test'.*use one of train"):
        hf.hf_info(hf.HFParams(path=str(path), image_column="img", split="test"))
    with pytest.raises(DataError, match="not a folder on this machine"):
        hf.hf_census(hf.HFParams(path="someone/on-the-hub"))  # the Hub is never asked


def test_without_the_datasets_library_one_paragraph_names_the_extra(tmp_path, monkeypatch,
                                                                     fresh_hf):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    with pytest.raises(DataError) as err:
        hf.hf_info(hf.HFParams(path=str(tmp_path)))
    text = err.value.paragraph()
    assert "gantk[hf]" in text and "pip install" in text and "data.name" in text


def test_a_conditional_backbone_trains_on_a_local_hf_folder(tmp_path, fresh_hf, monkeypatch):
    """A plain data folder read by datasets' imagefolder builder (labels from the subfolders)."""
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_cache")  # not ~
    root = _classes(tmp_path / "animals", nested=False)  # datasets' labels: one level deep
    pipe = Pipeline.from_spec(_conditional({"name": "hf_dataset", "path": str(root)}), device="cpu")
    assert pipe.backbone.num_classes == 3
    pipe.train(steps=1, progress=False)
    _, y = pipe.real_data()
    assert sorted(torch.bincount(y).tolist()) == [3, 4, 5]


def test_a_run_from_before_a_data_option_existed_resumes(tmp_path, monkeypatch):
    """A stored spec lists the data options of its day; one added since (labels, max_pixels)
    compares at its default, so an image_folder run trained before this change resumes."""
    from pydantic import Field

    from gantk.stack.plugins import get_registry

    root = _classes(tmp_path / "animals")
    spec = {"stack": "backbone=dcgan + loss=ns + data=image_folder", "seed": 0,
            "backbone": {"width": 4, "latent_dim": 8},
            "data": {"root": str(root), "resolution": 16},
            "train": {"steps": 1, "batch_size": 4, "sample_every": 0, "ckpt_every": 1}}
    Pipeline.from_spec(spec, device="cpu").train(out=tmp_path / "run", progress=False)

    class Later(FolderParams):  # a release that added an option
        added_later: int = Field(7)

    monkeypatch.setattr(get_registry().entries["image_folder"], "params", Later)
    spec["train"]["steps"] = 2
    resumed = Pipeline.from_spec(spec, device="cpu")
    resumed.train(out=tmp_path / "run", progress=False)
    assert resumed.step == 2
