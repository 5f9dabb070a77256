"""The plain training loops of the references (no gantk imports).

``train_gan``: per step ``n_critic`` D updates on a fresh real batch and fresh fakes, then one G
update; non-saturating (``ns``) or hinge loss; Adam. Lazy R1 (``r1_every`` > 0) is taken as a
*separate* D step every ``r1_every`` D steps with weight gamma / 2 * r1_every, and D's lr and betas
are rescaled by c = N / (N + 1), as in the official StyleGAN2 code and rosinality's train.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def batches(x: torch.Tensor, batch: int, gen: torch.Generator):
    while True:
        yield x[torch.randint(len(x), (batch,), generator=gen)]


def d_loss(kind: str, real, fake):
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def g_loss(kind: str, fake):
    return -fake.mean() if kind == "hinge" else F.softplus(-fake).mean()


def train_gan(G, D, data: torch.Tensor, *, latent: int, steps: int, batch: int, lr: float,
              betas: tuple[float, float], loss: str = "ns", n_critic: int = 1, r1_gamma: float = 0.0,
              r1_every: int = 0, seed: int = 0) -> None:
    torch.manual_seed(seed)
    c = r1_every / (r1_every + 1) if r1_every else 1.0
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=lr * c, betas=(betas[0] ** c, betas[1] ** c))
    real_batches = batches(data, batch, torch.Generator().manual_seed(seed))
    d_steps = 0
    G.train(), D.train()
    for _ in range(steps):
        for _ in range(n_critic):
            real = next(real_batches)
            with torch.no_grad():
                fake = G(torch.randn(batch, latent))
            opt_d.zero_grad()
            d_loss(loss, D(real), D(fake)).backward()
            opt_d.step()
            d_steps += 1
            if r1_every and d_steps % r1_every == 0:
                real = next(real_batches).requires_grad_(True)
                (grad,) = torch.autograd.grad(D(real).sum(), real, create_graph=True)
                opt_d.zero_grad()
                (r1_gamma / 2 * grad.pow(2).flatten(1).sum(1).mean() * r1_every).backward()
                opt_d.step()
        for p in D.parameters():
            p.requires_grad_(False)
        opt_g.zero_grad()
        g_loss(loss, D(G(torch.randn(batch, latent)))).backward()
        opt_g.step()
        for p in D.parameters():
            p.requires_grad_(True)


def train_autoencoder(net, data: torch.Tensor, *, steps: int, batch: int, lr: float,
                      betas: tuple[float, float], seed: int = 0) -> None:
    """Minimise mean squared reconstruction error; ``net(x)`` reconstructs x."""
    torch.manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=betas)
    real_batches = batches(data, batch, torch.Generator().manual_seed(seed))
    net.train()
    for _ in range(steps):
        x = next(real_batches)
        opt.zero_grad()
        F.mse_loss(net(x), x).backward()
        opt.step()
