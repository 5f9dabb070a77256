"""Reading one image file safely: regular files only, a pixel limit checked before decoding.

Every image gantk reads from a folder, a zip archive or a HuggingFace data set passes through
here, in the main process or in a DataLoader worker:

* :func:`open_regular` opens with ``O_NONBLOCK`` and checks ``fstat`` before reading a byte, so a
  FIFO, a socket or a device named ``evil.png`` is refused at once instead of blocking a worker
  (and with it training) forever; the check is on the opened descriptor, so a file swapped after
  the listing is caught too;
* :func:`decode` reads only the header first (PIL's ``Image.open`` is lazy) and refuses an image
  that declares more than ``max_pixels`` pixels before any pixel is decoded: a 69-byte PNG that
  declares 30000 x 30000 costs nothing; PIL's own ``DecompressionBomb`` warning and error become
  the same one paragraph;
* any failure to decode (truncated, corrupt, not an image) is one :class:`DataError` naming the
  file, never PIL's exception type.

The result is a uint8 (C, H, W) tensor: converted to L or RGB, centre-cropped to a square and
resized (bicubic) to ``resolution``.
"""

from __future__ import annotations

import os
import re
import stat
import warnings
from typing import BinaryIO

import torch
from torch import Tensor

from ..base.errors import DataError

#: the default pixel limit (an 8192 x 8192 image: 200 MB as RGB once decoded)
DEFAULT_MAX_PIXELS = 8192 * 8192
#: the largest limit a stack may set: PIL refuses anything above twice its own MAX_IMAGE_PIXELS
PIL_HARD_LIMIT = 2 * 89_478_485

RAISE_FIX = ("remove or shrink the file, or raise the limit with data.max_pixels = N (at most "
             f"{PIL_HARD_LIMIT:,}, PIL's own hard limit)")


def open_regular(path: str | os.PathLike, *, where: str = "data.root") -> BinaryIO:
    """``path`` opened for reading if it is a regular file (symlinks followed); a DataError
    otherwise. Never blocks: the open is non-blocking and the type is checked on the descriptor."""

    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise DataError(f"cannot open {name!r} ({exc.strerror or exc})", where=where,
                        fix="check that the file exists and is readable, or remove it.") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a folder"
                    if stat.S_ISDIR(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device")
            raise DataError(f"{name!r} is {kind}, not a regular file; gantk reads data only from "
                            "regular files", where=where,
                            fix="remove it from the data folder (or replace it with the image).")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def too_large(name: str, width: int | None, height: int | None, max_pixels: int,
              *, at_least: int | None = None) -> DataError:
    if width is not None and height is not None:
        size = f"{width} x {height} = {width * height:,} pixels"
        cost = f" (about {width * height * 3 / 2**20:,.0f} MiB once decoded as RGB)"
    elif at_least is not None:  # PIL's own limit stopped it: PIL names the count, not the sides
        size, cost = f"{at_least:,} pixels", f" (about {at_least * 3 / 2**20:,.0f} MiB as RGB)"
    else:
        size, cost = f"more than {PIL_HARD_LIMIT:,} pixels (PIL's own hard limit)", ""
    return DataError(f"the image declares {size}{cost}, more than the limit of {max_pixels:,} "
                     "pixels that gantk checks before decoding", where=name, fix=RAISE_FIX + ".")


def _bomb_pixels(exc: Exception) -> int | None:
    found = re.search(r"\((\d+) pixels\)", str(exc))
    return int(found.group(1)) if found else None


def decode(fp: BinaryIO, name: str, *, resolution: int, channels: int,
           max_pixels: int = DEFAULT_MAX_PIXELS, where: str = "data.root") -> Tensor:
    """One image from an open binary file -> uint8 (C, resolution, resolution)."""

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(fp) as im:  # reads the header only
                width, height = im.size
                if width * height > max_pixels:
                    raise too_large(name, width, height, max_pixels)
                im = im.convert("L" if channels == 1 else "RGB")
                side = min(im.size)
                left, top = (im.width - side) // 2, (im.height - side) // 2
                im = im.crop((left, top, left + side, top + side)).resize(
                    (resolution, resolution), Image.BICUBIC)
                raw = bytearray(im.tobytes())
    except DataError:
        raise
    except Image.DecompressionBombError as exc:
        pixels = _bomb_pixels(exc)
        raise too_large(name, None, None, max_pixels, at_least=pixels) from None
    except Image.UnidentifiedImageError:  # its text names the file object, not the file
        raise DataError(f"cannot read image {name!r}: not in an image format PIL can read "
                        "(damaged, or another kind of file with an image's name)", where=where,
                        fix="remove or repair the file.") from None
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, EOFError, ...
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise DataError(f"cannot read image {name!r}: {detail}", where=where,
                        fix="remove or repair the file.") from None
    t = torch.frombuffer(raw, dtype=torch.uint8)
    return t.view(resolution, resolution, channels).permute(2, 0, 1)
