"""The FID Inception weights fetch themselves, safely: download -> verify -> cache, a tampered file
refused before loading, the right one accepted and loaded weights_only, one paragraph offline.

No network: the published addresses are replaced by file:// URLs of small fake files, and the
pinned digest by the fake file's."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import torch

from gantk.metrics import inception as inc
from gantk.metrics.base import MetricError

ROOT = Path(__file__).resolve().parents[1]


def _save(path: Path, state: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A small state-dict file published at a file:// URL, its digest pinned; torch.hub's folder
    and the overrides pointed into tmp_path."""
    src = _save(tmp_path / "published" / "weights.pth", {"w": torch.arange(6.0)})
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    monkeypatch.setattr(inc, "INCEPTION_SHA256", digest)
    monkeypatch.setattr(inc, "INCEPTION_URLS", (src.as_uri(),))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv(inc.ENV_INCEPTION, raising=False)
    monkeypatch.delenv(inc.ENV_OFFLINE, raising=False)
    inc._STATE.clear()
    return src


def test_the_pinned_file_and_addresses_are_pytorch_fids():
    assert inc.INCEPTION_FILE == "pt_inception-2015-12-05-6726825d.pth"
    assert inc.INCEPTION_SHA256 == \
        "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
    assert inc.INCEPTION_SHA256.startswith(inc.INCEPTION_FILE.rsplit("-", 1)[1][:8])
    assert inc.INCEPTION_URLS[0].endswith("/" + inc.INCEPTION_FILE)
    assert all(u.startswith("https://") and u.endswith("-6726825d.pth") for u in inc.INCEPTION_URLS)


def test_first_use_downloads_verifies_and_caches_in_torch_hubs_folder(fake, tmp_path, monkeypatch):
    path = inc.inception_weights()
    assert path == tmp_path / "torch_home" / "hub" / "checkpoints" / inc.INCEPTION_FILE
    assert path.read_bytes() == fake.read_bytes()
    assert [p.name for p in path.parent.iterdir()] == [inc.INCEPTION_FILE]  # no temporary file
    # the second use reads the cached copy: the address is gone and nothing is fetched
    monkeypatch.setattr(inc, "INCEPTION_URLS", ((tmp_path / "gone.pth").as_uri(),))
    assert inc.inception_weights() == path
    assert inc.load_state_dict(path)["w"].tolist() == [0, 1, 2, 3, 4, 5]


def test_the_cache_follows_xdg_cache_home_when_torch_home_is_unset(fake, tmp_path, monkeypatch):
    monkeypatch.delenv("TORCH_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert inc.inception_weights() == tmp_path / "xdg" / "torch" / "hub" / "checkpoints" / \
        inc.INCEPTION_FILE


def test_a_copy_torch_fidelity_downloaded_is_reused(fake, tmp_path, monkeypatch):
    theirs = tmp_path / "torch_home" / "hub" / "checkpoints" / inc.OTHER_NAMES[0]
    theirs.parent.mkdir(parents=True)
    theirs.write_bytes(fake.read_bytes())
    monkeypatch.setattr(inc, "INCEPTION_URLS", ((tmp_path / "gone.pth").as_uri(),))
    assert inc.inception_weights() == theirs


def test_the_override_names_a_folder_or_a_file(fake, tmp_path, monkeypatch):
    folder = tmp_path / "shared_weights"
    monkeypatch.setenv(inc.ENV_INCEPTION, str(folder))
    assert inc.inception_weights() == folder / inc.INCEPTION_FILE  # downloaded into it
    assert not (tmp_path / "torch_home").exists()
    own = tmp_path / "mine.pth"
    own.write_bytes(fake.read_bytes())
    assert inc.inception_weights(own) == own  # --inception beats the environment
    with pytest.raises(MetricError, match="no Inception weights file at") as exc:
        inc.inception_weights(tmp_path / "typo.pth")  # a named file that is not there
    assert inc.INCEPTION_URLS[0] in str(exc.value)


def test_a_tampered_file_is_refused_and_never_loaded(fake, tmp_path, monkeypatch):
    path = inc.inception_weights()
    _save(path, {"w": torch.arange(6.0) + 1})  # same shape, other values
    loads = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(k) or {})
    inc._STATE.clear()
    with pytest.raises(MetricError) as exc:
        inc.inception_weights()
    text = str(exc.value)
    assert str(path) in text and inc.INCEPTION_SHA256 in text and "not loaded" in text
    with pytest.raises(MetricError):
        inc.load_state_dict(path)
    with pytest.raises(MetricError):
        inc.build_extractor(path)
    assert loads == []  # torch.load was never reached
    assert path.exists()  # the user's file is not deleted behind their back


def test_a_tampered_download_is_deleted_and_refused(fake, tmp_path, monkeypatch):
    evil = _save(tmp_path / "mirror" / "weights.pth", {"w": torch.zeros(6)})
    monkeypatch.setattr(inc, "INCEPTION_URLS", (evil.as_uri(),))
    with pytest.raises(MetricError, match="was deleted and not loaded"):
        inc.inception_weights()
    folder = tmp_path / "torch_home" / "hub" / "checkpoints"
    assert list(folder.iterdir()) == []


def test_the_next_address_is_tried_when_one_does_not_answer(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(inc, "INCEPTION_URLS", ((tmp_path / "gone.pth").as_uri(), fake.as_uri()))
    assert inc.inception_weights().read_bytes() == fake.read_bytes()


def test_the_right_file_is_loaded_weights_only_from_the_bytes_that_were_hashed(fake, monkeypatch):
    path = inc.inception_weights()
    seen = []
    real_load = torch.load

    def spy(f, *args, **kwargs):
        seen.append((type(f).__name__, kwargs.get("weights_only")))
        return real_load(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    assert inc.load_state_dict(path)["w"].sum() == 15
    assert seen == [("BytesIO", True)]


def test_offline_without_the_file_one_paragraph_names_file_url_digest_and_place(
        fake, tmp_path, monkeypatch):
    monkeypatch.setattr(inc, "INCEPTION_URLS", ("https://127.0.0.1:9/" + inc.INCEPTION_FILE,))
    monkeypatch.setattr(torch.hub, "download_url_to_file",
                        lambda *a, **k: (_ for _ in ()).throw(OSError("Network is unreachable")))
    with pytest.raises(MetricError) as exc:
        inc.inception_weights()
    text = exc.value.paragraph()
    where = tmp_path / "torch_home" / "hub" / "checkpoints" / inc.INCEPTION_FILE
    for part in (inc.INCEPTION_FILE, inc.INCEPTION_URLS[0], inc.INCEPTION_SHA256, str(where),
                 "Network is unreachable"):
        assert part in text
    assert "Traceback" not in text and len(text.splitlines()) <= 3


def test_gantk_offline_forbids_the_download(fake, monkeypatch):
    monkeypatch.setenv(inc.ENV_OFFLINE, "1")
    with pytest.raises(MetricError, match="GANTK_OFFLINE"):
        inc.inception_weights()
    assert inc.inception_weights(download=False) is None


def test_the_cli_reports_missing_weights_offline_in_one_paragraph_exit_2(fake, tmp_path, cli,
                                                                         monkeypatch):
    from PIL import Image

    for side in ("a", "b"):
        (tmp_path / side).mkdir()
        for i in range(3):
            Image.new("RGB", (8, 8), (40 * i, 20, 9)).save(tmp_path / side / f"{i}.png")
    monkeypatch.setattr(inc, "INCEPTION_URLS", ((tmp_path / "gone.pth").as_uri(),))
    code, out, err = cli("fid", tmp_path / "a", tmp_path / "b")
    assert code == 2
    assert inc.INCEPTION_FILE in err and inc.INCEPTION_SHA256 in err and "Traceback" not in err


# ---------------------------------------------------------------------------- the extractor


def _random_inception_state(tmp_path: Path) -> Path:
    """A state dict with the FID Inception's keys and shapes and random values (fp16: half size)."""
    import torch_fidelity.feature_extractor_inceptionv3 as tfi

    cls = tfi.FeatureExtractorInceptionV3
    with pytest.MonkeyPatch.context() as m:
        m.setattr(cls, "load_state_dict", lambda self, sd, **k: None)
        m.setattr(tfi, "load_state_dict_from_url", lambda *a, **k: {})
        torch.manual_seed(0)
        net = cls("x", ["2048"])
    state = {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}
    return _save(tmp_path / "random_inception.pth", state)


def test_torch_fidelitys_extractor_runs_on_the_verified_weights(tmp_path, monkeypatch):
    path = _random_inception_state(tmp_path)
    monkeypatch.setattr(inc, "INCEPTION_SHA256", hashlib.sha256(path.read_bytes()).hexdigest())
    inc._STATE.clear()
    weights_only = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda f, *a, **k: weights_only.append(
        k.get("weights_only")) or real_load(f, *a, **k))
    net = inc.InceptionNet(inc.inception_weights(path, download=False))
    assert weights_only == [True]
    state = real_load(path, weights_only=True)
    assert torch.equal(net.model.fc.weight, state["fc.weight"].float())  # our weights, loaded
    grey = torch.rand(2, 1, 16, 16) * 2 - 1
    out = net(grey, {"embedding", "probs"})
    assert out["embedding"].shape == (2, 2048) and out["probs"].shape == (2, 1008)
    assert out["probs"].sum(1) == pytest.approx([1.0, 1.0])
    rgb = net(grey.expand(-1, 3, -1, -1), {"embedding"})["embedding"]
    assert (rgb == out["embedding"]).all()  # grey is repeated to RGB
    # the input is quantised as a saved PNG would be: the uint8 image gives the same features
    as_png = ((grey + 1) * 127.5).round().to(torch.uint8)
    assert (net(as_png, {"embedding"})["embedding"] == out["embedding"]).all()
    assert net.identity().endswith(inc.INCEPTION_SHA256)


def test_no_torchscript_anywhere_in_gantk():
    sources = [p for d in ("core", "plugins") for p in (ROOT / d).rglob("*.py")]
    pattern = re.compile(r"torch\.jit|inception_torchscript|InceptionV3W")
    assert sources and not [str(p) for p in sources if pattern.search(p.read_text())]


def test_an_evaluation_can_fetch_its_weights_before_it_is_due(fake, tmp_path, monkeypatch):
    """For train.eval_every: known at the start of training, not at the first evaluation."""
    from gantk.base.interfaces import DataInfo
    from gantk.metrics.evaluate import prepare_evaluation

    folder, digits = DataInfo(shape=(3, 32, 32)), DataInfo(shape=(1, 8, 8))
    points = DataInfo(shape=(2,), kind="points")
    assert prepare_evaluation(points, "ring", ["prdc"]) is None
    assert prepare_evaluation(digits, "digits", ["fid", "modes"]) is None  # the shipped classifier
    monkeypatch.setattr(inc, "INCEPTION_URLS", ((tmp_path / "gone.pth").as_uri(),))
    with pytest.raises(MetricError, match=inc.INCEPTION_FILE):
        prepare_evaluation(folder, "image_folder", ["fid"])
    with pytest.raises(MetricError, match=inc.INCEPTION_FILE):
        prepare_evaluation(digits, "digits", ["fid"], feature_net="inception")
    monkeypatch.setattr(inc, "INCEPTION_URLS", (fake.as_uri(),))
    assert prepare_evaluation(folder, "image_folder", None) == inc.target_path()
