"""Sampling conventions: truncation, noise modes, seed lists, class selection, interpolation (CLI
and API)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gantk import Pipeline, SpecError
from gantk.cli.app import main
from gantk.sample.sampling import parse_seeds, path, slerp, truncate_prior
from tiny import tiny_spec


@pytest.fixture(scope="module")
def style_run(tmp_path_factory):
    """A tiny StyleGAN2 with EMA, trained 2 steps and saved, with strong noise inputs (strength
    0.5 on every layer; two steps leave them near their initial 0), so that noise shows in every
    image unless the noise mode keeps it fixed."""
    spec = tiny_spec("stylegan2", [], device="cpu", ema_decay=0.9)
    pipe = Pipeline.from_spec(spec)
    pipe.train(steps=2, progress=False)
    with torch.no_grad():
        for g in (pipe.backbone.generator, pipe.ema):
            for name, p in g.named_parameters():
                if name.endswith("noise.strength"):
                    p.fill_(0.5)
            g.w_avg.normal_()  # a w_avg far from what the mapping gives, so truncation is visible
    run = tmp_path_factory.mktemp("style") / "run"
    pipe.save(run)
    return run


@pytest.fixture(scope="module")
def dcgan_run(tmp_path_factory):
    spec = tiny_spec("dcgan", [], device="cpu")
    spec["backbone"]["conditional"] = True
    pipe = Pipeline.from_spec(spec)
    pipe.train(steps=2, progress=False)
    run = tmp_path_factory.mktemp("dcgan") / "run"
    pipe.save(run)
    return run


def test_parse_seeds_reads_ranges_and_lists():
    assert parse_seeds("0-3,7,2") == [0, 1, 2, 3, 7]
    assert parse_seeds([5, 1]) == [5, 1]
    for bad in ("a", "5-2", "", "-1"):
        with pytest.raises(SpecError):
            parse_seeds(bad)


def test_latent_truncation_lerps_towards_the_prior_mean_and_one_is_off():
    torch.manual_seed(0)
    z = torch.randn(2000, 8)
    torch.testing.assert_close(truncate_prior(z, "normal", 0.5), 0.5 * z)
    assert torch.equal(truncate_prior(z, "normal", 0.0), torch.zeros_like(z))
    u = torch.rand(2000, 8) * 2 - 1
    torch.testing.assert_close(truncate_prior(u, "uniform", 0.25), 0.25 * u)
    torch.testing.assert_close(truncate_prior(u, "uniform", 2.0), u)  # a bounded support


def test_slerp_keeps_the_norm_between_equal_norm_points_and_path_hits_the_ends():
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    mid = slerp(a, b, torch.tensor([[0.5]]))
    torch.testing.assert_close(mid.norm(), torch.tensor(1.0))
    pts = torch.tensor([[0.0], [1.0], [3.0]])
    p = path(pts, 2)
    torch.testing.assert_close(p.squeeze(1), torch.tensor([0.0, 0.5, 1.0, 2.0, 3.0]))


def test_stylegan2_truncation_zero_is_the_average_image_of_the_ema_generator(style_run):
    pipe = Pipeline.load(style_run)
    assert pipe.ema is not None
    x0 = pipe.sample(seeds="0-5", truncation=0.0)  # const noise, the default
    # every seed gives the image of the EMA generator's w_avg (with its constant noise maps)
    with torch.no_grad(), pipe.eval_mode():
        avg = pipe.ema.render(pipe.ema.w_avg.expand(1, pipe.ema.num_ws, -1), noise_mode="const")
    for img in x0:
        torch.testing.assert_close(img, avg[0], atol=1e-5, rtol=0)
    # with random noise the average w still gives different images: the noise is really on
    xr = pipe.sample(seeds="0-5", truncation=0.0, noise_mode="random")
    assert float((xr - xr[0]).abs().max()) > 0.05
    # psi = 1 leaves samples alone, psi = 0.5 lies between (in w, hence in spread)
    x1 = pipe.sample(seeds="0-7", truncation=1.0)
    plain = pipe.sample(seeds="0-7")
    torch.testing.assert_close(x1, plain, atol=0, rtol=0)
    xh = pipe.sample(seeds="0-7", truncation=0.5)
    assert 0 < float(xh.std(0).mean()) < float(plain.std(0).mean())


def test_truncation_one_is_off_even_where_the_stack_sets_a_default(style_run):
    pipe = Pipeline.load(style_run)
    plain = pipe.sample(seeds="0-3")
    for g in (pipe.backbone.generator, pipe.ema):
        g.truncation_psi = 0.3  # as backbone.truncation_psi = 0.3 in the stack
    assert not torch.allclose(pipe.sample(seeds="0-3"), plain)
    torch.testing.assert_close(pipe.sample(seeds="0-3", truncation=1.0), plain, atol=0, rtol=0)


def test_noise_modes_const_is_deterministic_random_follows_the_seed_none_drops_it(style_run):
    pipe = Pipeline.load(style_run)
    const = pipe.sample(seeds="0-3")
    torch.testing.assert_close(pipe.sample(seeds="0-3", noise_mode="const"), const, atol=0, rtol=0)
    random = pipe.sample(seeds="0-3", noise_mode="random")
    torch.testing.assert_close(pipe.sample(seeds="0-3", noise_mode="random"), random, atol=0, rtol=0)
    none = pipe.sample(seeds="0-3", noise_mode="none")
    assert float((random - const).abs().max()) > 0.05 and float((none - const).abs().max()) > 0.05
    # const: an image depends on its latent alone, in any batch (not only under a seed list)
    z = torch.randn(4, pipe.backbone.latent_dim)
    with torch.no_grad(), pipe.eval_mode(), pipe.backbone.noise_mode(pipe.ema, "const"):
        torch.testing.assert_close(pipe.ema(z)[2:], pipe.ema(z[2:]), atol=1e-6, rtol=0)
    # evaluation's draws (sample_batches without a mode) keep random noise, as NVlabs' metrics
    torch.manual_seed(2)
    first = next(pipe.sample_batches(4))
    torch.manual_seed(2)
    z = pipe.backbone.sample_latent(4)
    with torch.no_grad(), pipe.eval_mode():
        as_const = pipe.ema(z, noise_mode="const")
    assert float((first - as_const).abs().max()) > 0.05


def test_noise_mode_is_refused_on_a_backbone_without_noise(dcgan_run, tmp_path, capsys):
    pipe = Pipeline.load(dcgan_run)
    with pytest.raises(SpecError, match="no noise inputs"):
        pipe.sample(2, noise_mode="const")
    pipe.sample(2)  # no mode asked for: fine
    assert main(["sample", str(dcgan_run), "--n", "2", "--noise-mode", "random", "--out",
                 str(tmp_path / "x.png")]) == 2
    assert "no noise inputs" in capsys.readouterr().err


def test_latent_truncation_zero_gives_one_image_one_is_off_and_negative_is_refused(dcgan_run):
    pipe = Pipeline.load(dcgan_run)
    y = torch.full((4,), 3)
    x = pipe.sample(4, truncation=0.0, y=y)
    assert float((x - x[0]).abs().max()) == 0.0
    plain = pipe.sample(seeds="0-3", y=y)
    torch.testing.assert_close(pipe.sample(seeds="0-3", y=y, truncation=1.0), plain, atol=0, rtol=0)
    assert not torch.allclose(pipe.sample(seeds="0-3", y=y, truncation=0.5), plain)
    with pytest.raises(SpecError, match="truncation"):
        pipe.sample(2, truncation=-0.5)


def test_seed_images_do_not_depend_on_the_list_or_the_run(style_run):
    pipe = Pipeline.load(style_run)
    a = pipe.sample(seeds="0-3")
    b = pipe.sample(seeds=[3, 9, 1], batch_size=2)
    torch.testing.assert_close(b[0], a[3], atol=0, rtol=0)
    torch.testing.assert_close(b[2], a[1], atol=0, rtol=0)
    assert not torch.equal(a[0], a[1])
    again = Pipeline.load(style_run).sample(seeds=[1])
    torch.testing.assert_close(again[0], a[1], atol=0, rtol=0)


def test_cli_seeds_write_one_png_per_seed_identical_across_runs(style_run, tmp_path):
    for out in ("a", "b"):
        assert main(["sample", str(style_run), "--seeds", "0-2", "--outdir",
                     str(tmp_path / out), "--truncation", "0.7"]) == 0
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["seed0000.png", "seed0001.png", "seed0002.png"]
    for name in names:
        first = np.asarray(Image.open(tmp_path / "a" / name))
        assert first.shape[:2] == (16, 16)
        assert np.array_equal(first, np.asarray(Image.open(tmp_path / "b" / name)))
    assert main(["sample", str(style_run), "--seeds", "2", "--outdir", str(tmp_path / "c")]) == 0
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "c" / "seed0002.png")),
                              np.asarray(Image.open(tmp_path / "a" / "seed0002.png")))
    for mode in ("random", "const"):
        assert main(["sample", str(style_run), "--seeds", "2", "--noise-mode", mode,
                     "--outdir", str(tmp_path / mode)]) == 0
    const = np.asarray(Image.open(tmp_path / "const" / "seed0002.png"))
    assert np.array_equal(const, np.asarray(Image.open(tmp_path / "c" / "seed0002.png")))  # default
    assert not np.array_equal(const, np.asarray(Image.open(tmp_path / "random" / "seed0002.png")))
    assert main(["sample", str(style_run), "--seeds", "2", "--outdir", str(tmp_path / "big"),
                 "--min-side", "100"]) == 0  # a 16 px sample enlarged by whole pixels, to 112 px
    big = np.asarray(Image.open(tmp_path / "big" / "seed0002.png"))
    assert big.shape[:2] == (112, 112) and np.array_equal(big[::7, ::7], const)


def test_cli_class_samples_one_class_and_refuses_a_missing_class(dcgan_run, tmp_path, capsys):
    out = tmp_path / "s.npz"
    assert main(["sample", str(dcgan_run), "--n", "5", "--class", "7", "--out", str(out)]) == 0
    assert (np.load(out)["y"] == 7).all()
    assert main(["sample", str(dcgan_run), "--n", "5", "--class", "10", "--out", str(out)]) == 2
    assert "class 10 does not exist" in capsys.readouterr().err
    assert main(["sample", str(dcgan_run), "--outdir", str(tmp_path / "d")]) == 2
    assert "--seeds" in capsys.readouterr().err


def test_interpolate_seeds_ends_at_the_seeds_images(style_run):
    pipe = Pipeline.load(style_run)
    frames = pipe.interpolate([4, 5], steps=3, space="z")
    ends = pipe.sample(seeds=[4, 5])
    assert frames.shape[0] == 4
    torch.testing.assert_close(frames[0], ends[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(frames[-1], ends[1], atol=1e-5, rtol=0)
    w_frames = pipe.interpolate([4, 5], steps=3)  # auto: W on stylegan2
    torch.testing.assert_close(w_frames[0], ends[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(w_frames[-1], ends[1], atol=1e-5, rtol=0)
    assert not torch.allclose(w_frames[1], frames[1])  # a different path in between
    # truncated: the ends are the seeds' truncated images
    t_frames = pipe.interpolate([4, 5], steps=2, truncation=0.5)
    torch.testing.assert_close(t_frames[-1], pipe.sample(seeds=[5], truncation=0.5)[0], atol=1e-5,
                               rtol=0)
    # random noise: every frame takes the first seed's noise, so the far end is not seed 5's image
    r_frames = pipe.interpolate([4, 5], steps=3, noise_mode="random")
    torch.testing.assert_close(r_frames[0], pipe.sample(seeds=[4], noise_mode="random")[0],
                               atol=1e-5, rtol=0)
    assert float((r_frames[-1] - pipe.sample(seeds=[5], noise_mode="random")[0]).abs().max()) > 0.05


@pytest.mark.parametrize("suffix", [".png", ".gif"])
def test_cli_interpolate_seeds_writes_grid_or_animation(dcgan_run, tmp_path, suffix):
    out = tmp_path / f"walk{suffix}"
    assert main(["interpolate", str(dcgan_run), "--seeds", "1,2,3", "--steps", "4", "--mode",
                 "slerp", "--class", "2", "--out", str(out)]) == 0
    if suffix == ".png":  # 2 rows of 5 images of 16 px with 1 px padding
        assert Image.open(out).size == (5 * 17 + 1, 2 * 17 + 1)
    else:
        import imageio.v3 as iio

        frames = iio.imread(out, index=None)
        assert frames.shape[0] == 2 * 4 + 1 and frames.shape[1] >= 128


def test_cli_interpolate_w_space_is_refused_without_one(dcgan_run, tmp_path, capsys):
    assert main(["interpolate", str(dcgan_run), "--seeds", "1,2", "--space", "w", "--out",
                 str(tmp_path / "x.png")]) == 2
    assert "no intermediate latent space" in capsys.readouterr().err


def test_cli_interpolate_mp4_needs_imageio_ffmpeg_or_writes_a_video(dcgan_run, tmp_path, capsys):
    import importlib.util

    out = tmp_path / "walk.mp4"
    code = main(["interpolate", str(dcgan_run), "--seeds", "1,2", "--steps", "2", "--out", str(out)])
    if importlib.util.find_spec("imageio_ffmpeg") is None:
        assert code == 2 and "pip install imageio-ffmpeg" in capsys.readouterr().err
        assert not out.exists()
    else:
        assert code == 0 and out.stat().st_size > 0
