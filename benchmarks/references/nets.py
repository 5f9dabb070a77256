"""Textbook generators and discriminators, one small class per family (no gantk imports).

* MLP (AdvLatGAN App. E.1): z -> 100 -> 200 -> 100 -> 2, ReLU; D mirrors it.
* DCGAN (Radford et al. 2016): z -> 4x4 x 2^n w, n stride-2 transposed convs with BN + ReLU, tanh;
  D: stride-2 convs with LeakyReLU(0.2), BN before the activation from the second conv on, a linear
  logit; N(0, 0.02) init.
* SNGAN ResNet (Miyato et al. 2018, Table 4): G linear -> 4x4 x ch, three up-blocks, BN-ReLU-conv
  -tanh; D: residual blocks with spectral norm and global sum pooling.
* Autoencoder: three stride-2 convs down, a linear code, the mirror up.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm


def mlp_nets(latent: int = 2, hidden: tuple[int, ...] = (100, 200, 100)) -> tuple[nn.Module, nn.Module]:
    def stack(sizes):
        layers = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        return nn.Sequential(*layers[:-1])
    return stack([latent, *hidden, 2]), nn.Sequential(stack([2, *hidden, 1]), nn.Flatten(0))


class DCGANG(nn.Module):
    def __init__(self, latent: int, channels: int, size: int, width: int) -> None:
        super().__init__()
        n = {16: 2, 32: 3, 64: 4}[size]
        ch = [width * 2 ** (n - i) for i in range(n)]
        layers = [nn.ConvTranspose2d(latent, ch[0], 4, 1, 0), nn.BatchNorm2d(ch[0]), nn.ReLU()]
        for a, b in zip(ch[:-1], ch[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1), nn.BatchNorm2d(b), nn.ReLU()]
        layers += [nn.ConvTranspose2d(ch[-1], channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z[:, :, None, None])


class DCGAND(nn.Module):
    def __init__(self, channels: int, size: int, width: int) -> None:
        super().__init__()
        n = {16: 2, 32: 3, 64: 4}[size]
        layers, c = [], channels
        for i in range(n):
            layers.append(nn.Conv2d(c, width * 2 ** i, 4, 2, 1))
            if i:
                layers.append(nn.BatchNorm2d(width * 2 ** i))
            layers.append(nn.LeakyReLU(0.2))
            c = width * 2 ** i
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * 16, 1))

    def forward(self, x):
        return self.net(x).squeeze(1)


def dcgan_init(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class ResG(nn.Module):
    class Block(nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            self.b1, self.b2 = nn.BatchNorm2d(c), nn.BatchNorm2d(c)
            self.c1, self.c2 = nn.Conv2d(c, c, 3, 1, 1), nn.Conv2d(c, c, 3, 1, 1)

        def forward(self, x):
            up = F.interpolate(x, scale_factor=2)
            h = self.c1(F.interpolate(F.relu(self.b1(x)), scale_factor=2))
            return up + self.c2(F.relu(self.b2(h)))  # identity shortcut: same width throughout

    def __init__(self, latent: int, channels: int, ch: int) -> None:
        super().__init__()
        self.ch = ch
        self.fc = nn.Linear(latent, 16 * ch)
        self.blocks = nn.Sequential(*(self.Block(ch) for _ in range(3)))
        self.out = nn.Sequential(nn.BatchNorm2d(ch), nn.ReLU(), nn.Conv2d(ch, channels, 3, 1, 1), nn.Tanh())

    def forward(self, z):
        return self.out(self.blocks(self.fc(z).view(-1, self.ch, 4, 4)))


class ResD(nn.Module):
    class Block(nn.Module):
        def __init__(self, a: int, b: int, down: bool, first: bool) -> None:
            super().__init__()
            self.c1, self.c2 = spectral_norm(nn.Conv2d(a, b, 3, 1, 1)), spectral_norm(nn.Conv2d(b, b, 3, 1, 1))
            self.sc = spectral_norm(nn.Conv2d(a, b, 1)) if (a != b or down) else None
            self.down, self.first = down, first

        def forward(self, x):
            h = x if self.first else F.relu(x)
            h = self.c2(F.relu(self.c1(h)))
            s = x
            if self.first:  # the optimised first block: pool, then 1x1 conv
                s = self.sc(F.avg_pool2d(x, 2)) if self.down else self.sc(x)
            elif self.sc is not None:
                s = self.sc(x)
                s = F.avg_pool2d(s, 2) if self.down else s
            return (F.avg_pool2d(h, 2) if self.down else h) + s

    def __init__(self, channels: int, ch: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(self.Block(channels, ch, True, True), self.Block(ch, ch, True, False),
                                    self.Block(ch, ch, False, False), self.Block(ch, ch, False, False))
        self.fc = spectral_norm(nn.Linear(ch, 1))

    def forward(self, x):
        return self.fc(F.relu(self.blocks(x)).sum((2, 3))).squeeze(1)


class AE(nn.Module):
    def __init__(self, channels: int, size: int, width: int, code: int) -> None:
        super().__init__()
        s = size // 8
        self.enc = nn.Sequential(nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2),
                                 nn.Conv2d(width, 2 * width, 4, 2, 1), nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2),
                                 nn.Conv2d(2 * width, 4 * width, 4, 2, 1), nn.BatchNorm2d(4 * width),
                                 nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(4 * width * s * s, code))
        self.dec = nn.Sequential(nn.Linear(code, 4 * width * s * s), nn.Unflatten(1, (4 * width, s, s)),
                                 nn.BatchNorm2d(4 * width), nn.ReLU(), nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1),
                                 nn.BatchNorm2d(2 * width), nn.ReLU(), nn.ConvTranspose2d(2 * width, width, 4, 2, 1),
                                 nn.BatchNorm2d(width), nn.ReLU(), nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh())

    def forward(self, x):
        return self.dec(self.enc(x))


def count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


__all__ = ["mlp_nets", "DCGANG", "DCGAND", "dcgan_init", "ResG", "ResD", "AE", "count", "torch"]
