"""Fuzzing the spec grammar and the ``--set`` syntax: every input ends as a valid spec or a clear
SpecError/GantkError, never a traceback, within a memory and time bound (derandomized for CI)."""

from __future__ import annotations

import os
import time
import tracemalloc

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gantk import get_registry
from gantk.base.errors import GantkError
from gantk.facade.setup import check_size
from gantk.stack import build
from gantk.stack.spec import parse_spec, parse_toml_text

# 150 examples each in CI (seconds); GANTK_FUZZ_EXAMPLES=5000 for a longer local hunt
FUZZ = settings(max_examples=int(os.environ.get("GANTK_FUZZ_EXAMPLES", "150")), derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

MEMORY_BOUND = 64 << 20  # bytes a single spec may make gantk allocate while checking it
TIME_BOUND = 10.0        # seconds a single spec may take to check (on a loaded 2-core machine)

NAMES = ["mlp", "dcgan", "resnet", "stylegan2", "autoencoder", "ns", "hinge", "wgan", "ring",
         "grid", "digits", "cifar10", "advlat_z", "msgan", "clr", "acl", "lis", "qua+", "nope"]
KEYS = ["steps", "batch_size", "lr_g", "betas", "weight_decay", "device", "hidden", "latent_dim",
        "width", "resolution", "modes", "per_mode", "split", "seed", "num_samples", "eval_n",
        "channel_base", "n_critic", "download", "root", "name", "code_hidden", "stacked_size"]
SECTIONS = ["train", "backbone", "loss", "data", "methods", "seed", "stack", "methods[0]",
            "methods.clr", ".", "", "train.", "[0]", "a..b"]

big_ints = st.one_of(st.integers(-3, 3), st.integers(-2**70, 2**70),
                     st.sampled_from([0, 1, 2**31, 2**63 - 1, 2**63, 10**12, -1]))
scalars = st.one_of(big_ints, st.floats(allow_nan=True, allow_infinity=True),
                    st.booleans(), st.text(max_size=20), st.sampled_from(NAMES),
                    st.sampled_from(["cpu", "cuda:7", "tpu", "auto", "cuda:99999", "train",
                                     "bogus-split"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)),
    max_leaves=12)


@pytest.fixture(scope="module", autouse=True)
def warm_registry():
    """Plugin imports happen once, outside the measured bound."""
    for stack in ("backbone=mlp + data=ring", "backbone=dcgan + data=digits"):
        check_size(build.resolve(parse_spec({"stack": stack}), get_registry()))


OUTCOMES = {"valid": 0, "refused": 0}
RAN: set[str] = set()  # the fuzzers that have run in this session (test_the_fuzz_reached_both_outcomes)


def _check(make) -> None:
    """Run ``make()`` (parse + resolve + static checks + size estimate) under the bounds."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        spec = make()
        res = build.resolve(spec, get_registry())
        build.check_static(res)
        check_size(res)
        OUTCOMES["valid"] += 1
    except GantkError as exc:
        OUTCOMES["refused"] += 1
        assert exc.paragraph().strip() and len(exc.paragraph()) < 4000
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < MEMORY_BOUND, peak
    assert time.perf_counter() - t0 < TIME_BOUND


@pytest.mark.filterwarnings("ignore")
@FUZZ
@given(backbone=st.one_of(st.just("mlp"), st.sampled_from(NAMES)),
       data=st.one_of(st.just("ring"), st.sampled_from(NAMES)),
       methods=st.lists(st.sampled_from(NAMES), max_size=2),
       sections=st.dictionaries(st.sampled_from(["train", "backbone", "data", "loss"]),
                                st.dictionaries(st.sampled_from(KEYS), values, max_size=4),
                                max_size=4))
def test_fuzzed_stack_files(backbone, data, methods, sections):
    RAN.add("stack files")
    doc = {"stack": " + ".join([f"backbone={backbone}", *methods, f"data={data}"])}
    doc.update(sections)
    try:
        text = tomli_w.dumps(doc)
    except (TypeError, ValueError):  # not representable as TOML (nan keys etc.): skip
        return
    _check(lambda: parse_spec(parse_toml_text(text)))


@pytest.mark.filterwarnings("ignore")
@FUZZ
@given(items=st.lists(st.tuples(st.sampled_from(SECTIONS), st.sampled_from(KEYS + [""]),
                                st.one_of(st.text(max_size=30), st.sampled_from([
                                    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
                                    "1" * 40, "-5", "inf", "nan", "[2.0, 1.0]", '"cuda:1"',
                                    "{a = 1}", "", "=", "1e400", "[0.5, 1.0]"]))),
                      max_size=4),
       raw=st.lists(st.text(max_size=25), max_size=2))
def test_fuzzed_set_overrides(ring_base, items, raw):
    RAN.add("overrides")
    overrides = [f"{sec}.{key}={val}" if sec and key else f"{sec}{key}={val}"
                 for sec, key, val in items] + raw
    _check(lambda: parse_spec(ring_base, overrides))


def test_the_fuzz_reached_both_outcomes(ring_base):
    """The fuzzers produce valid specs and refusals both (strategies that only ever refuse test
    nothing). A fuzzer that has not run in this session (``-k reached_both`` alone, another
    order) is run here, so the result does not depend on which tests ran before."""
    if "stack files" not in RAN:
        test_fuzzed_stack_files()
    if "overrides" not in RAN:
        test_fuzzed_set_overrides(ring_base=ring_base)
    assert OUTCOMES["valid"] >= 5 and OUTCOMES["refused"] >= 50, OUTCOMES


@pytest.fixture(scope="module")
def ring_base():
    return {"stack": "backbone=mlp + data=ring", "backbone": {"hidden": [8]},
            "data": {"per_mode": 10}}


@pytest.mark.parametrize("text, where", [
    ("seed = " + "9" * 30, "seed"),
    ("stack = 'backbone=mlp'\n[train]\nbetas = [1.5, 0.9]", "train.betas"),
    ("stack = 'backbone=mlp'\n[train]\nweight_decay = 1e308", "train.weight_decay"),
    ("stack = 'backbone=mlp'\n[train]\nlr_g = inf", "train"),
    ("stack = 'backbone=mlp'\n[train]\ndevice = 'gpu7'", "train.device"),
    ("stack = 'backbone=mlp'\n[backbone]\nhidden = [-4]", "backbone"),
    ("stack = 'backbone=mlp'\n[backbone]\nlatent_dim = 100000000", "backbone"),
    ("stack = 'backbone=mlp'\n[data]\nmodes = 100000\nper_mode = 100000", "data"),
    ("stack = 'backbone=mlp'\n[train]\nnum_samples = 1000000000", "train.num_samples"),
    ("stack = 'backbone=dcgan + data=cifar10'\n[data]\nsplit = 'validation'", "data.split"),
    ("x = " + "[" * 5000 + "]" * 5000, "nested"),
])
def test_known_bad_specs_name_the_place(text, where):
    with pytest.raises(GantkError) as err:
        spec = parse_spec(parse_toml_text(text))
        res = build.resolve(spec, get_registry())
        build.check_static(res)
    assert where in err.value.paragraph()


def test_bad_utf8_and_bad_overrides_are_clear(tmp_path, cli):
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"stack = '\xff\xfe'")
    code, _, err = cli("check", bad)
    assert code == 2 and "UTF-8" in err and "Traceback" not in err
    good = tmp_path / "good.toml"
    good.write_text("stack = 'backbone=mlp + data=ring'\n")
    for item in (".=1", "=1", "train..steps=1", "methods[0]=1", "train.steps=" + "9" * 100000):
        code, _, err = cli("check", good, "--set", item)
        assert code == 2 and "Traceback" not in err and len(err) < 3000, (item, err[:500])
