"""The sweep engine: expansion of the file, validation before anything runs, skip and resume,
crash isolation, and the mean +- std arithmetic of the summary."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from gantk.sweeping.report import write_markdown
from gantk.sweeping.summary import curves, final_scores, mean_std, run_curves, summarize
from gantk.sweeping.verdicts import trends, verdicts
from gantk.sweeping.sweeps import ERROR_FILE, RESULT_FILE, Sweep, SweepError

RING = {
    "stack": "backbone=mlp + loss=ns + data=ring",
    "backbone": {"hidden": [16, 16]},
    "data": {"per_mode": 100},
    "train": {"steps": 6, "batch_size": 32, "log_every": 1, "sample_every": 0, "ckpt_every": 3},
}


def sweep_dict(**kw) -> dict:
    d = {"name": "t", "stack": RING, "seeds": [0, 1, 2],
         "axes": {"method": {"plain": [], "msgan": ['stack="backbone=mlp + loss=ns + data=ring '
                                                    '+ msgan"']},
                  "train.lr_g": [1e-4, 2e-4]},
         "eval": {"metrics": ["modes"], "n": 200}}
    d.update(kw)
    return d


def test_expansion_names_overrides_and_order(tmp_path):
    sw = Sweep.from_dict(sweep_dict(set=["train.steps=4"]))
    cells = sw.cells()
    assert [c for c, _ in cells] == ["method=plain,train.lr_g=0.0001",
                                     "method=plain,train.lr_g=0.0002",
                                     "method=msgan,train.lr_g=0.0001",
                                     "method=msgan,train.lr_g=0.0002"]
    assert cells[2][1] == ["train.steps=4", 'stack="backbone=mlp + loss=ns + data=ring + msgan"',
                           "train.lr_g=0.0001"]
    assert sw.baseline == cells[0][0]  # the first cell unless named
    runs = sw.runs(tmp_path)
    assert len(runs) == 12
    assert [r.seed for r in runs[:4]] == [0, 0, 0, 0]  # every cell's first seed first
    assert runs[5].dir == tmp_path / "method=plain__train.lr_g=0.0002" / "seed_1"
    assert runs[5].overrides[-1] == "seed=1"


def test_base_stack_file_relative_to_the_sweep_file(tmp_path):
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "ring.toml").write_text('stack = "backbone=mlp + loss=ns + data=ring"\n')
    (tmp_path / "s.toml").write_text('base = "stacks/ring.toml"\nseeds = [4]\n')
    sw = Sweep.from_file(tmp_path / "s.toml")
    assert sw.base["stack"].startswith("backbone=mlp") and sw.cells() == [("base", [])]


@pytest.mark.parametrize("change, where", [
    ({"baseline": "method=plan,train.lr_g=0.0001"}, "did you mean"),
    ({"axes": {"method": []}}, "no values"),
    ({"seeds": []}, "seeds"),
    ({"base": "x.toml"}, "once"),
    ({"bogus": 1}, "bogus"),
    ({"axes": {"method": {"plain": [], "z": {"train_as": "plian", "with": ["advlat_z"]}}}},
     "did you mean 'plain'"),
    ({"axes": {"method": {"plain": [], "z": {"train_as": "plain", "with": []}}}}, "train_as"),
    ({"axes": {"method": {"plain": [], "z": {"train_as": "plain", "with": ["advlat_z"],
                                             "set": []}}}}, "unknown key(s) set"),
])
def test_bad_sweep_files_are_refused(change, where):
    with pytest.raises(SweepError) as exc:
        Sweep.from_dict(sweep_dict(**change))
    assert where in exc.value.paragraph()


def test_validation_names_every_bad_cell_before_anything_runs(tmp_path):
    sw = Sweep.from_dict(sweep_dict(axes={"train.lr": [1e-4, 2e-4]}))
    with pytest.raises(SweepError) as exc:
        sw.run(tmp_path / "out")
    text = exc.value.paragraph()
    assert "train.lr=0.0001" in text and "train.lr=0.0002" in text and "lr_g" in text
    assert not (tmp_path / "out").exists()
    with pytest.raises(SweepError, match="unknown metric"):
        Sweep.from_dict(sweep_dict(eval={"metrics": ["fidd"]})).validate()


def test_summary_at_a_step_reads_the_runs_eval_logs(tmp_path):
    # interrupted runs still compare at a step every run has passed (what train.eval_every wrote)
    sw = Sweep.from_dict(sweep_dict(axes={"method": {"plain": [], "msgan": [
        'stack="backbone=mlp + loss=ns + data=ring + msgan"']}}))
    high = {("method=plain", 0): 4.0, ("method=plain", 1): 6.0, ("method=plain", 2): 5.0,
            ("method=msgan", 0): 1.0, ("method=msgan", 1): 2.0}  # msgan seed 2: not there yet
    for r in sw.runs(tmp_path):
        r.dir.mkdir(parents=True)
        if (r.cell, r.seed) not in high:
            continue
        lines = [{"step": 500, "high_quality": 0.0},
                 {"step": 1000, "high_quality": 99.0},  # superseded by the later record
                 {"step": 1000, "high_quality": high[(r.cell, r.seed)]}]
        (r.dir / "eval.jsonl").write_text("\n".join(map(json.dumps, lines)) + '\n{"step": 10')
    s = sw.summarize(tmp_path, step=1000)
    plain, msgan = s.row("method=plain").stats, s.row("method=msgan").stats
    assert plain["high_quality"]["mean"] == pytest.approx(5.0)
    assert plain["high_quality"]["std"] == pytest.approx(1.0)
    assert msgan["high_quality"]["n"] == 2 and msgan["high_quality"]["diff"] == pytest.approx(-3.5)
    assert "at step 1000" in s.name
    assert (tmp_path / "summary_step1000.md").is_file() and not (tmp_path / "summary.md").exists()
    assert sw.summarize(tmp_path, step=700).row("method=plain").stats == {}


def test_mean_std_arithmetic_on_a_fake_metric():
    cells = [("a", []), ("b", []), ("c", [])]
    results = [{"cell": "a", "seed": s, "result": {"score": v, "n": 10, "feature_space": "raw"}}
               for s, v in zip([0, 1, 2], [1.0, 2.0, 4.0])]
    results += [{"cell": "b", "seed": s, "result": {"score": v}} for s, v in [(0, 5.0), (2, 7.0)]]
    results += [{"cell": "b", "seed": 1, "error": "TrainingError: diverged"}]
    s = summarize("t", cells, [0, 1, 2], "a", results, directions={"score": "min"})
    a, b, c = s.cells
    assert s.keys == ["score"] and s.spaces == {"feature_space": "raw"}
    assert a.stats["score"]["mean"] == pytest.approx(7 / 3)
    assert a.stats["score"]["std"] == pytest.approx(np.std([1, 2, 4], ddof=1))
    assert a.stats["score"]["n"] == 3 and a.stats["score"]["diff"] == 0
    assert b.stats["score"]["mean"] == 6.0 and b.stats["score"]["n"] == 2
    assert b.stats["score"]["std"] == pytest.approx(math.sqrt(2))
    assert b.stats["score"]["diff"] == pytest.approx(6 - 7 / 3)
    assert b.failed == {1: "TrainingError: diverged"} and b.pending == []
    assert c.stats == {} and c.pending == [0, 1, 2]
    m, sd = mean_std([3.0])
    assert m == 3.0 and math.isnan(sd)  # one seed: no spread, never a made-up 0


def test_every_cell_gets_a_paired_verdict_with_its_ci_and_p():
    cells = [("base", []), ("far", []), ("near", []), ("one", [])]
    results = [{"cell": "base", "seed": s, "result": {"fid": v}} for s, v in
               zip([0, 1, 2, 3, 4], [10.0, 11.0, 12.0, 10.5, 11.5])]
    # far: 2.0 lower on every seed, +-0.1: better
    results += [{"cell": "far", "seed": s, "result": {"fid": v}} for s, v in
                zip([0, 1, 2, 3, 4], [8.0, 9.1, 9.9, 8.5, 9.45])]
    # near: inside the noise; better on seeds 0 and 2 only
    results += [{"cell": "near", "seed": s, "result": {"fid": v}} for s, v in
                zip([0, 1, 2, 3, 4], [9.0, 12.5, 11.0, 11.5, 11.7])]
    results += [{"cell": "one", "seed": 0, "result": {"fid": 1.0}}]  # one seed: no test
    s = summarize("t", cells, [0, 1, 2, 3, 4], "base", results, directions={"fid": "min"})
    v = {r["cell"]: r for r in verdicts(final_scores(s), cells=[c for c, _ in cells],
                                        baseline="base", primary=["fid"],
                                        directions={"fid": "min"})}
    assert set(v) == {"far", "near", "one"} and all(r["primary"] for r in v.values())
    far, near, one = v["far"], v["near"], v["one"]
    diffs = np.array([-2.0, -1.9, -2.1, -2.0, -2.05])
    assert far["diffs"] == pytest.approx(list(diffs)) and far["mean"] == pytest.approx(diffs.mean())
    from scipy import stats

    ref = stats.ttest_1samp(diffs, 0.0)
    ci = ref.confidence_interval(0.95)
    assert far["p"] == pytest.approx(ref.pvalue) and far["ci_low"] == pytest.approx(ci.low)
    assert far["p_adj"] >= far["p"] and far["verdict"] == "better" and far["k_better"] == 5
    assert near["verdict"] == "no difference detected" and near["k_better"] == 2
    assert near["mde"] > 0 and near["ci_low"] < 0 < near["ci_high"]
    assert one["verdict"] == "too few seeds" and one["n"] == 1
    # "higher is better" reads the same numbers the other way round
    up = verdicts(final_scores(s), cells=[c for c, _ in cells], baseline="base", primary=["fid"],
                  directions={"fid": "max"})
    assert next(r for r in up if r["cell"] == "far")["verdict"] == "worse"


def test_secondary_keys_are_corrected_apart_from_the_primary():
    cells = [("base", []), ("m", [])]
    rng = np.random.default_rng(0)
    results = []
    for seed in range(6):
        shared = rng.normal(size=3)
        results.append({"cell": "base", "seed": seed,
                        "result": {"fid": 10 + shared[0], "recall": 0.5 + shared[1] / 10,
                                   "precision": 0.5 + shared[2] / 10}})
        results.append({"cell": "m", "seed": seed,
                        "result": {"fid": 9 + shared[0] + rng.normal() * 0.01,
                                   "recall": 0.5 + shared[1] / 10 + rng.normal() * 0.01,
                                   "precision": 0.5 + shared[2] / 10 + rng.normal() * 0.01}})
    s = summarize("t", cells, list(range(6)), "base", results,
                  directions={"fid": "min", "recall": "max", "precision": "max"})
    out = verdicts(final_scores(s), cells=["base", "m"], baseline="base", primary=["fid"],
                   directions=s.directions)
    fam = {r["metric"]: r["family"] for r in out}
    assert fam == {"fid": "primary", "recall": "secondary", "precision": "secondary"}
    assert out[0]["metric"] == "fid" and out[0]["verdict"] == "better"
    sec = [r for r in out if r["family"] == "secondary"]
    assert all(r["p_adj"] >= r["p"] for r in sec)


def test_an_undefined_score_on_one_seed_is_named_not_averaged_away(tmp_path):
    cells = [("plain", []), ("z", [])]
    results = [{"cell": "plain", "seed": s, "result": {"kl": v}} for s, v in
               zip([0, 1, 2], [float("nan"), 2.0, 3.0])]  # seed 0: no sample to score
    results += [{"cell": "z", "seed": s, "result": {"kl": v}} for s, v in zip([0, 1, 2], [1.0] * 3)]
    s = summarize("t", cells, [0, 1, 2], "plain", results, directions={"kl": "min"})
    assert math.isnan(s.row("plain").stats["kl"]["mean"])
    (v,) = verdicts(final_scores(s), cells=["plain", "z"], baseline="plain", primary=["kl"],
                    directions={"kl": "min"})
    assert v["n"] == 2 and v["seeds"] == [1, 2]  # seed 0 has no pair to compare
    assert v["verdict"] == "too few seeds"
    assert len(s.notes) == 1 and "plain seed(s) 0" in s.notes[0] and "2, 3" in s.notes[0]
    write_markdown(s, tmp_path / "s.md")
    assert "undefined (NaN) for plain seed(s) 0" in (tmp_path / "s.md").read_text()


def test_convergence_fits_every_evaluation_of_the_last_quarter_per_seed():
    # 8 evaluations to step 4000 on 4 seeds: the last quarter holds steps 3000-4000
    steps = [500 * (i + 1) for i in range(8)]

    def run(values, seeds=4, wobble=0.3):
        return [{"cell": "b", "seed": sd, "records": [
            {"step": st, "fid": v + wobble * ((sd + i) % 3 - 1)} for i, (st, v) in
            enumerate(zip(steps, values))]} for sd in range(seeds)]

    still = trends(run_curves(run([40, 30, 20, 15, 12, 10, 8, 5]), ["fid"]), "b", {"fid": "min"})
    assert still["fid"]["status"] == "improving" and still["fid"]["window"] == [3000.0, 4000.0]
    assert still["fid"]["change"] == pytest.approx(-5, abs=0.6)
    assert set(still["fid"]["per_seed"]) == {"0", "1", "2", "3"}
    flat = trends(run_curves(run([40, 30, 20, 15, 12, 9, 9, 9]), ["fid"]), "b", {"fid": "min"})
    assert flat["fid"]["status"] == "flat" and "converged" in flat["fid"]["sentence"] + "converged"
    worse = trends(run_curves(run([40, 30, 20, 15, 12, 10, 12, 14]), ["fid"]), "b", {"fid": "min"})
    assert worse["fid"]["status"] == "worsening" and worse["fid"]["best_step"] == 3000
    up = trends(run_curves(run([0.1, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1], wobble=0.01), ["fid"]),
                "b", {"fid": "max"})
    assert up["fid"]["status"] == "improving"
    few = trends(run_curves(run([3, 2], seeds=3), ["fid"]), "b", {"fid": "min"})
    assert few["fid"]["status"] == "too few evaluations"


def test_curves_average_each_step_over_the_seeds_that_reached_it():
    evals = [{"cell": "a", "seed": 0, "records": [{"step": 500, "fid": 4.0},
                                                  {"step": 1000, "fid": 9.0},
                                                  {"step": 1000, "fid": 3.0}]},  # last counts
             {"cell": "a", "seed": 1, "records": [{"step": 500, "fid": 6.0}]}]
    out = curves(["a", "b"], [0, 1], evals, ["fid", "kid"])
    assert list(out) == ["a"] and list(out["a"]) == ["fid"]
    first, second = out["a"]["fid"]
    assert (first["step"], first["mean"], first["n"]) == (500, 5.0, 2)
    assert first["std"] == pytest.approx(math.sqrt(2))
    assert (second["step"], second["mean"], second["n"]) == (1000, 3.0, 1)


def test_summary_writes_training_curves_and_the_baselines_convergence(tmp_path):
    sw = Sweep.from_dict(sweep_dict(axes={"method": {"plain": [], "msgan": [
        'stack="backbone=mlp + loss=ns + data=ring + msgan"'],
        "z": {"train_as": "plain", "with": ["advlat_z"]}}}))
    for r in sw.runs(tmp_path):
        r.dir.mkdir(parents=True)
        if r.cell == "method=z":
            continue  # a train_as run trains nothing: no curve of its own
        lines = [{"step": st, "modes_covered": float(m + r.seed % 2), "source": "eval_every"}
                 for st, m in [(2, 2.0), (4, 5.0), (6, 6.0), (8, 6.0)]]
        lines.append({"step": 8, "modes_covered": 99.0, "source": "sweep"})  # final: not a point
        (r.dir / "eval.jsonl").write_text("\n".join(map(json.dumps, lines)) + "\n")
        (r.dir / RESULT_FILE).write_text(json.dumps({"modes_covered": 6.0 + r.seed, "step": 8}))
    s = sw.summarize(tmp_path)
    assert set(s.curves) == {"method=plain", "method=msgan"}
    pts = s.curves["method=plain"]["modes_covered"]
    assert [p["step"] for p in pts] == [2, 4, 6, 8] and pts[-1]["mean"] == pytest.approx(6 + 1 / 3)
    conv = s.convergence["modes_covered"]  # steps 6 and 8 only in the last quarter
    assert conv["status"] == "too few evaluations" and conv["window"] == [6.0, 8.0]
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["convergence"]["modes_covered"]["status"] == "too few evaluations"
    md = (tmp_path / "summary.md").read_text()
    assert "## Training curves" in md and "fewer than 3 evaluations" in md
    assert "| 8 | 6.33 ± 0.58 (3) | 6.33 ± 0.58 (3) |" in md
    assert (tmp_path / "summary_curves.png").stat().st_size > 0
    # the verdicts: msgan (the same scores here); z has no result yet
    assert {v["cell"] for v in data["verdicts"]} == {"method=msgan"}
    assert all(v["verdict"] == "no difference detected" for v in data["verdicts"])
    at6 = sw.summarize(tmp_path, step=6)
    assert at6.convergence["modes_covered"]["window"] == [4.5, 6.0]
    assert (tmp_path / "summary_step6_curves.png").is_file()


def test_last_k_scores_runs_by_their_last_evaluations(tmp_path):
    """[stats] last_k = 3: a training cell is scored by the mean of its last 3 in-training
    evaluations; the train_as cell (final evaluation only) is paired with the baseline's final."""
    sw = Sweep.from_dict(sweep_dict(stats={"primary": ["modes_covered"], "last_k": 3}, axes={
        "method": {"plain": [], "msgan": ['stack="backbone=mlp + loss=ns + data=ring + msgan"'],
                   "z": {"train_as": "plain", "with": ["advlat_z"]}}}, seeds=[0, 1, 2, 3]))
    for r in sw.runs(tmp_path):
        r.dir.mkdir(parents=True)
        up = 1.0 + 0.05 * (r.seed % 2) if r.cell == "method=msgan" else 0.0
        if r.cell != "method=z":
            lines = [{"step": st, "modes_covered": m + up + 0.1 * r.seed, "source": "eval_every"}
                     for st, m in [(2, 2.0), (4, 5.0), (6, 6.0), (8, 7.0)]]
            (r.dir / "eval.jsonl").write_text("\n".join(map(json.dumps, lines)) + "\n")
        final = 7.0 + (2.0 if r.cell == "method=z" else 0.0) + 0.1 * r.seed + 0.01 * (r.seed % 2)
        (r.dir / RESULT_FILE).write_text(json.dumps({"modes_covered": final, "step": 8}))
    s = sw.summarize(tmp_path)
    ms, z = s.verdict("method=msgan", "modes_covered"), s.verdict("method=z", "modes_covered")
    assert ms["score"] == "mean of the last 3 in-training evaluations"
    assert ms["mean"] == pytest.approx(1.025) and ms["verdict"] == "better"
    assert z["score"] == "final evaluation" and z["mean"] == pytest.approx(2.0)
    assert s.protocol["last_k"] == 3 and s.protocol["primary"] == ["modes_covered"]


def test_the_primary_key_must_be_a_score(tmp_path):
    sw = Sweep.from_dict(sweep_dict(stats={"primary": ["modes_coverd"]}))
    with pytest.raises(SweepError) as err:
        sw.validate()
    assert "modes_covered" in err.value.paragraph() and "stats.primary" in err.value.paragraph()
    with pytest.raises(SweepError):
        Sweep.from_dict(sweep_dict(stats={"last_k": 2}))
    with pytest.raises(SweepError):
        Sweep.from_dict(sweep_dict(seeds=[0, 0]))


class FakeLauncher:
    """Runs nothing: writes a fake metric for each run it is handed (or fails the ones named)."""

    slots = 2

    def __init__(self, fail: set[tuple[str, int]] = frozenset()) -> None:
        self.started: list[tuple[str, int]] = []
        self.fail = fail

    def start(self, run):
        self.started.append((run.cell, run.seed))
        if (run.cell, run.seed) in self.fail:
            (run.dir / ERROR_FILE).write_text("TrainingError: boom\n")
            return 2
        value = 10.0 * ("msgan" in run.cell) + run.seed
        (run.dir / RESULT_FILE).write_text(json.dumps({"modes_covered": value, "n": 200}))
        return 0

    def poll(self, handle):
        return handle

    def stop(self, handle):  # pragma: no cover - nothing runs
        pass


def test_run_skips_finished_runs_and_isolates_failures(tmp_path):
    sw = Sweep.from_dict(sweep_dict(axes={"method": {"plain": [], "msgan": [
        'stack="backbone=mlp + loss=ns + data=ring + msgan"']}}))
    first = FakeLauncher(fail={("method=msgan", 1)})
    s = sw.run(tmp_path, launcher=first, validate=False)
    assert len(first.started) == 6
    assert s.row("method=msgan").failed == {1: "TrainingError: boom"}
    st = s.row("method=msgan").stats["modes_covered"]
    assert st["n"] == 2 and st["mean"] == 11.0 and st["diff"] == pytest.approx(10.0)
    for name in ("summary.md", "summary.json", "summary.csv", "summary.png"):
        assert (tmp_path / name).stat().st_size > 0
    md = (tmp_path / "summary.md").read_text()
    assert "**method=plain** (baseline)" in md and "boom" in md
    # run again: only the failed run is started
    second = FakeLauncher()
    s = sw.run(tmp_path, launcher=second, validate=False)
    assert second.started == [("method=msgan", 1)]
    assert s.row("method=msgan").stats["modes_covered"]["n"] == 3
    assert s.row("method=msgan").failed == {}
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["baseline"] == "method=plain" and data["cells"][1]["metrics"]["modes_covered"][
        "values"] == [10.0, 11.0, 12.0]


class StoppingLauncher(FakeLauncher):
    """As FakeLauncher, but the runs named end as a process stopped by a signal does."""

    def __init__(self, stop, code=130):
        super().__init__()
        self.stop_runs, self.code = stop, code

    def start(self, run):
        if (run.cell, run.seed) in self.stop_runs:
            self.started.append((run.cell, run.seed))
            return self.code
        return super().start(run)


@pytest.mark.parametrize("code", [130, -15])
def test_a_run_stopped_by_a_signal_is_not_a_failure_and_holds_its_train_as_runs(tmp_path, code):
    """SIGTERM to one run's process (a user pausing it) must not read as a failed run: no error
    file, listed as stopped, its evaluation-only runs wait, and the next call resumes them."""
    sw = Sweep.from_dict(sweep_dict(axes={"method": {"plain": [], "z": {
        "train_as": "plain", "with": ["advlat_z"]}}}))
    events = []
    first = StoppingLauncher({("method=plain", 1)}, code)
    s = sw.run(tmp_path, launcher=first, validate=False, on_event=events.append)
    assert ("method=z", 1) not in first.started and len(first.started) == 5
    assert s.stopped == ["method=plain seed 1", "method=z seed 1"]
    assert s.row("method=plain").failed == {} and s.row("method=plain").pending == [1]
    assert not (tmp_path / "method=plain" / "seed_1" / ERROR_FILE).exists()
    assert any("stopped method=plain seed 1" in e and "1 run(s) evaluating" in e for e in events)
    assert "1 failed" not in events[-1] and "2 stopped" in events[-1]
    assert "Stopped by a signal" in (tmp_path / "summary.md").read_text()
    again = FakeLauncher()
    s = sw.run(tmp_path, launcher=again, validate=False)
    assert again.started == [("method=plain", 1), ("method=z", 1)] and s.stopped == []
    assert s.row("method=z").stats["modes_covered"]["n"] == 3


def test_worker_stopped_during_the_evaluation_exits_130_without_an_error(tmp_path, monkeypatch):
    from gantk import Pipeline
    from gantk.sweeping.worker import main as worker
    from gantk.sweeping.sweeps import write_job

    sw = Sweep.from_dict(sweep_dict(axes={}, seeds=[0]))
    run = sw.runs(tmp_path)[0]
    write_job(run, sw.base, sw.spec.eval, threads=1)

    def interrupted(self, *a, **k):
        raise KeyboardInterrupt  # what SIGTERM raises in the worker outside training

    monkeypatch.setattr(Pipeline, "evaluate", interrupted)
    import signal

    before = signal.getsignal(signal.SIGTERM)
    assert worker([str(run.dir)]) == 130
    assert signal.getsignal(signal.SIGTERM) is before  # the worker's handler is not left behind
    assert not (run.dir / ERROR_FILE).exists() and not (run.dir / RESULT_FILE).exists()
    assert sorted(p.name for p in (run.dir / "checkpoints").iterdir())  # training's work stays


def test_a_second_sweep_into_the_same_out_is_refused_before_it_touches_a_run(tmp_path):
    """Two sweeps into one --out once collided: the second found the first's running run locked,
    counted it as failed and wrote an error file into the directory the first was training."""
    import subprocess
    import sys

    from gantk.sweeping.sweeps import SWEEP_LOCK

    holder = subprocess.Popen(  # a first `gantk sweep` holding OUT
        [sys.executable, "-c", "import time; from gantk.store.runlock import run_lock\n"
         f"with run_lock({str(tmp_path)!r}, name={SWEEP_LOCK!r}):\n"
         "    print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    sw = Sweep.from_dict(sweep_dict(axes={}))
    try:
        assert holder.stdout.readline().strip() == "held"
        launcher = FakeLauncher()
        with pytest.raises(SweepError, match=f"pid {holder.pid}") as info:
            sw.run(tmp_path, launcher=launcher, validate=False)
        assert "is running a sweep" in info.value.paragraph()
        assert "kill -INT" in info.value.paragraph()
        assert launcher.started == [] and not list(tmp_path.glob("*/seed_*/sweep_job.json"))
    finally:
        holder.kill()
        holder.wait()
    assert sw.run(tmp_path, launcher=FakeLauncher(), validate=False).row("base").stats  # freed


def test_changed_settings_do_not_reuse_finished_runs(tmp_path):
    """A --set (or cell, base, [eval]) change with the same --out is refused before anything runs:
    the finished runs would otherwise be skipped and their old scores shown as the new ones."""
    axes = {"method": {"plain": [], "msgan": ['stack="backbone=mlp + loss=ns + data=ring + msgan"']}}
    Sweep.from_dict(sweep_dict(axes=axes)).run(tmp_path, launcher=FakeLauncher(), validate=False)
    for changed in (sweep_dict(axes=axes, set=["train.lr_g=3e-4"]),
                    sweep_dict(axes=axes, eval={"metrics": ["modes"], "n": 300})):
        launcher = FakeLauncher()
        with pytest.raises(SweepError, match="other settings") as err:
            Sweep.from_dict(changed).run(tmp_path, launcher=launcher, validate=False)
        assert launcher.started == [] and "new --out" in str(err.value)
    same = FakeLauncher()
    Sweep.from_dict(sweep_dict(axes=axes)).run(tmp_path, launcher=same, validate=False)
    assert same.started == []


def test_worker_resumes_an_interrupted_run(tmp_path):
    """A run stopped at step 3 of 6 (its checkpoint on disk) continues from there."""
    from gantk import Pipeline
    from gantk.sweeping.worker import main as worker
    from gantk.sweeping.sweeps import write_job

    sw = Sweep.from_dict(sweep_dict(axes={}, seeds=[0]))
    run = sw.runs(tmp_path)[0]
    Pipeline.from_spec(sw.base, run.overrides).train(steps=3, out=run.dir, progress=False)
    write_job(run, sw.base, sw.spec.eval, threads=1)
    assert worker([str(run.dir)]) == 0
    result = json.loads((run.dir / RESULT_FILE).read_text())
    assert result["step"] == 6 and result["modes_total"] == 8.0 and result["n"] == 200
    steps = [json.loads(ln)["step"] for ln in (run.dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]  # no step trained twice
    rows = [json.loads(ln) for ln in (run.dir / "eval.jsonl").read_text().splitlines()]
    assert rows[-1]["source"] == "sweep"  # `gantk plot` sees the sweep's evaluation


def test_worker_reports_a_failing_run(tmp_path):
    from gantk.sweeping.worker import main as worker
    from gantk.sweeping.sweeps import write_job

    sw = Sweep.from_dict(sweep_dict(axes={}, seeds=[0], set=["train.steps=2"]))
    run = sw.runs(tmp_path)[0]
    run.dir.mkdir(parents=True)
    write_job(run, {**sw.base, "stack": "backbone=mlp + loss=ns + data=nosuchdata"},
              sw.spec.eval, threads=1)
    assert worker([str(run.dir)]) == 2
    assert "nosuchdata" in (run.dir / ERROR_FILE).read_text()
    assert not run.finished


@pytest.mark.slow
def test_cli_sweep_runs_cells_in_processes_and_finishes_only_what_is_left(tmp_path, cli):
    """Two stacks x one seed through `gantk sweep` with the local process pool; then one run's
    result is removed (as if killed before it finished) and only that run is redone."""

    path = tmp_path / "s.toml"
    import tomli_w

    path.write_text(tomli_w.dumps(sweep_dict(seeds=[0], axes={"method": sweep_dict()["axes"][
        "method"]})))
    code, out, err = cli("sweep", path, "--out", tmp_path / "out", "--jobs", "2")
    assert code == 0, err
    assert "2/2 done" in err and "modes_covered" in out
    runs = Sweep.from_file(path).runs(tmp_path / "out")
    assert all(r.finished for r in runs)
    first = (runs[0].dir / RESULT_FILE).read_text()
    (runs[1].dir / RESULT_FILE).unlink()
    code, out, err = cli("sweep", path, "--out", tmp_path / "out", "--jobs", "2")
    assert code == 0, err
    assert "1 run(s) already finished, skipped" in err and "started method=msgan" in err
    assert "started method=plain" not in err
    assert (runs[0].dir / RESULT_FILE).read_text() == first
    assert Path(tmp_path / "out" / "summary.csv").read_text().count("modes_covered") == 2


SHARED_AXES = {"method": {"plain": [], "z": {"train_as": "plain",
                                             "with": [{"name": "advlat_z", "steps": 3}]}}}


class InProcessLauncher:
    """Runs each job with the real worker in this process; a run ends one poll after it starts,
    so the order in which runs were started is observable."""

    slots = 2

    def __init__(self) -> None:
        self.events: list[tuple[str, str, int]] = []

    def start(self, run):
        from gantk.sweeping.worker import main as worker

        self.events.append(("start", run.cell, run.seed))
        return [run, worker([str(run.dir)]), False]

    def poll(self, handle):
        if not handle[2]:  # still "running" at the first poll
            handle[2] = True
            return None
        self.events.append(("end", handle[0].cell, handle[0].seed))
        return handle[1]

    def stop(self, handle):  # pragma: no cover - nothing runs in the background
        pass


def test_a_train_as_cell_evaluates_the_networks_of_its_source_run(tmp_path):
    """``z = { train_as = "plain", with = [advlat_z] }`` trains nothing: it waits for the plain
    run of the same seed, then scores those networks with advlat_z at sampling, exactly as
    `gantk eval RUN --with advlat_z` would."""
    from gantk import Pipeline

    sw = Sweep.from_dict(sweep_dict(axes=SHARED_AXES, seeds=[0, 1]))
    plan = {c.name: c for c in sw.plan()}
    assert plan["method=z"].trained_in == "method=plain"
    assert plan["method=z"].overrides == plan["method=plain"].overrides
    launcher = InProcessLauncher()
    s = sw.run(tmp_path, launcher=launcher, validate=False)
    ev = launcher.events
    assert ev[:2] == [("start", "method=plain", 0), ("start", "method=plain", 1)]  # z waits
    for seed in (0, 1):  # each z run started only after its plain run had ended
        assert ev.index(("start", "method=z", seed)) > ev.index(("end", "method=plain", seed))
    plain, z = (tmp_path / "method=plain" / "seed_0"), (tmp_path / "method=z" / "seed_0")
    assert (plain / "checkpoints").is_dir() and not (z / "checkpoints").exists()
    assert not (z / "metrics.jsonl").exists()  # no training step in the shared cell
    from gantk.base.errors import CheckpointError

    with pytest.raises(CheckpointError, match="train_as") as err:  # `gantk eval` on it
        Pipeline.load(z)
    assert str(plain) in err.value.paragraph()
    result = json.loads((z / RESULT_FILE).read_text())
    assert result["train_run"] == "method=plain/seed_0" and result["step"] == 6
    row = json.loads((z / "eval.jsonl").read_text().splitlines()[-1])
    assert row["with"] == [{"name": "advlat_z", "steps": 3, "from": "with"}]
    direct = Pipeline.load(plain).evaluate(["modes"], n=200, seed=0,
                                           with_=[{"name": "advlat_z", "steps": 3}])
    assert result["high_quality"] == direct["high_quality"]
    assert s.row("method=z").stats["high_quality"]["n"] == 2
    assert "the networks of method=plain, sampled with advlat_z(steps=3)" in (
        tmp_path / "summary.md").read_text()
    # per-step views: the shared cell has its final evaluation only, and is not "unfinished"
    assert sw.summarize(tmp_path, step=6).row("method=z").stats["high_quality"]["n"] == 2
    at = sw.summarize(tmp_path, step=3)
    assert at.row("method=z").stats == {} and at.row("method=z").pending == []
    assert "evaluated at its final step only" in (tmp_path / "summary_step3.md").read_text()


def test_a_train_as_run_whose_source_failed_or_points_outside_reports_it(tmp_path):
    from gantk.sweeping.worker import main as worker
    from gantk.sweeping.sweeps import write_job

    sw = Sweep.from_dict(sweep_dict(axes=SHARED_AXES, seeds=[0]))
    z = next(r for r in sw.runs(tmp_path) if r.cell == "method=z")
    write_job(z, sw.base, sw.spec.eval, threads=1)
    assert worker([str(z.dir)]) == 2  # the plain run never ran
    assert "has not finished" in (z.dir / ERROR_FILE).read_text()
    job = json.loads((z.dir / "sweep_job.json").read_text())
    (z.dir / "sweep_job.json").write_text(json.dumps({**job, "train_run": "../../elsewhere/seed_0"}))
    assert worker([str(z.dir)]) == 2
    assert "is not CELL/seed_S" in (z.dir / ERROR_FILE).read_text()


def test_validation_builds_the_sampling_transforms_of_train_as_cells(tmp_path):
    sw = Sweep.from_dict(sweep_dict(axes={"method": {"plain": [], "z": {
        "train_as": "plain", "with": ["advlat_zz"]}}}))
    with pytest.raises(SweepError, match="cell 'method=z'.*advlat_zz"):
        sw.validate()


def test_a_larger_train_steps_extends_finished_runs_and_only_picks_cells(tmp_path, cli):
    """`--set train.steps=9` on a sweep trained to 6 steps continues the runs from their last
    checkpoint (no step trained twice) and evaluates them again; `--only method=z` runs that
    train_as cell and the run it evaluates, nothing else. The old results stay readable, the
    summary warns that msgan's result is from step 6, and shortening is refused."""
    import tomli_w

    axes = {"method": {**SHARED_AXES["method"], "msgan": sweep_dict()["axes"]["method"]["msgan"]}}
    d = sweep_dict(axes=axes, seeds=[0])
    Sweep.from_dict(d).run(tmp_path, launcher=InProcessLauncher(), validate=False)
    plain, z = tmp_path / "method=plain" / "seed_0", tmp_path / "method=z" / "seed_0"
    msgan_result = (tmp_path / "method=msgan" / "seed_0" / RESULT_FILE).read_text()

    longer = Sweep.from_dict({**d, "set": ["train.steps=9"]})
    with pytest.raises(SweepError, match="matches no cell.*did you mean"):
        longer.run(tmp_path, launcher=InProcessLauncher(), validate=False, only=["plian"])
    launcher = InProcessLauncher()
    s = longer.run(tmp_path, launcher=launcher, validate=False, only=["method=z"])
    assert [e[1] for e in launcher.events if e[0] == "start"] == ["method=plain", "method=z"]
    steps = [json.loads(ln)["step"] for ln in (plain / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 10))  # resumed at 6, not retrained
    assert json.loads((plain / RESULT_FILE).read_text())["step"] == 9
    assert json.loads((plain / "sweep_result_step6.json").read_text())["step"] == 6
    assert [json.loads(ln)["step"] for ln in (z / "eval.jsonl").read_text().splitlines()] == [6, 9]
    assert json.loads((z / RESULT_FILE).read_text())["step"] == 9
    assert (tmp_path / "method=msgan" / "seed_0" / RESULT_FILE).read_text() == msgan_result
    assert s.row("method=z").steps == [9] and s.row("method=msgan").steps == [6]
    other_step = [n for n in s.notes if "another training step" in n]
    assert len(other_step) == 1 and "method=msgan seed 0: step 6, not 9" in other_step[0]
    assert "**Warning:**" in (tmp_path / "summary.md").read_text()
    at6 = longer.summarize(tmp_path, step=6)  # the comparison before the extension
    assert all(at6.row(c).stats["modes_covered"]["n"] == 1 for c in
               ("method=plain", "method=z", "method=msgan"))
    assert not any("another training step" in n for n in at6.notes)

    moved = {**d, "stack": {**d["stack"], "train": {**d["stack"]["train"], "steps": 9}}}
    again = InProcessLauncher()  # the same 9 steps, now in the file instead of a --set: same runs
    Sweep.from_dict(moved).run(tmp_path, launcher=again, validate=False, only=["method=z"])
    assert again.events == []
    with pytest.raises(SweepError, match="trained 9 steps.*does not shorten"):
        Sweep.from_dict({**d, "set": ["train.steps=7"]}).run(
            tmp_path, launcher=(never := InProcessLauncher()), validate=False)
    assert never.events == []

    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(d))
    code, out, err = cli("sweep", path, "--out", tmp_path, "--set", "train.steps=9", "--only",
                         "msgan", "--check")
    assert code == 0, err
    assert "--only: 1 of these run(s) would run: method=msgan" in out
    assert "method=msgan/seed_0: train.steps 6 -> 9" in out  # what running it would extend
    code, out, err = cli("sweep", path, "--out", tmp_path, "--only", "msgan", "--summary")
    assert code == 2 and "--only" in err
