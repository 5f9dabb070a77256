"""First-party backbones. Each module has a ``Params`` model and a ``build(params, data)``.

This plugin also registers StyleGAN2's training-side regulariser ``path_length``, which only works
with a generator that exposes its per-layer w (``needs = ["w_latents"]``).
"""

from __future__ import annotations

from gantk import hookimpl

from . import autoencoder, dcgan, mlp, resnet, stylegan2, stylegan2_reg


@hookimpl
def gantk_register(register) -> None:
    register.backbone("mlp", mlp.build, params=mlp.MLPParams,
                      summary="fully connected G and D for 2-D data (AdvLatGAN Tables 13-14)",
                      paper="AdvLatGAN (Li et al.), App. E.1")
    register.backbone("dcgan", dcgan.build, params=dcgan.DCGANParams,
                      summary="DCGAN at 16/32/48/64 px (AdvLatGAN Tables 15-16, 19-20); conditional "
                              "BN + projection D, weight norm + TPReLU (LIS App. J) as options",
                      paper="Radford et al. 2016; AdvLatGAN App. G")
    register.backbone("resnet", resnet.build, params=resnet.ResNetParams,
                      summary="SNGAN ResNet G and spectrally normalised D at 32/48 px (any multiple "
                              "of 8); conditional BN + projection D as an option",
                      paper="Miyato et al. 2018 (SNGAN), App. B; Miyato & Koyama 2018")
    register.backbone("stylegan2", stylegan2.build, params=stylegan2.StyleGAN2Params,
                      ema=stylegan2.EMA, provides=["w_latents"],  # named in needs messages
                      summary="StyleGAN2 in plain PyTorch: mapping net, modulated convs, noise, skip "
                              "G, residual D with minibatch std, style mixing, truncation",
                      paper="Karras et al. 2020, Analyzing and Improving the Image Quality of StyleGAN")
    register.backbone("autoencoder", autoencoder.build, params=autoencoder.AutoencoderParams,
                      summary="encoder-decoder without an image discriminator, for ACL-AE "
                              "(backbone=autoencoder + acl)",
                      paper="ACL (Adversarial Code Learning), Sec. 4.1")
    register.regularizer("path_length", stylegan2_reg.build, params=stylegan2_reg.PathLengthParams,
                         check=stylegan2_reg.check, needs=["w_latents"],
                         provides=["double_backward"],
                         summary="StyleGAN2's lazy path-length regulariser on G (needs "
                                 "backbone=stylegan2)",
                         paper="Karras et al. 2020, Sec. 3.2",
                         cost={"extra_g_forward_backward": "1/every",
                               "note": "one G forward on batch/2 and a double backward every "
                                       "`every` G steps"})
