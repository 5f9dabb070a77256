"""The core's own plugin: the data sets. Registered through the ``gantk`` entry-point group like
every other plugin (see pyproject.toml), so it can be listed and disabled the same way."""

from __future__ import annotations

from functools import partial

from . import data
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
    register.dataset("image_folder", data.load_folder, info=data.folder_info,
                     params=data.FolderParams, summary="any folder of images")
    for name in data.TORCHVISION:
        register.dataset(name, partial(data.load_torchvision, name),
                         info=partial(data.torchvision_info, name), params=data.TorchvisionParams,
                         summary=f"torchvision's {name} from data.root (no download by default)")
