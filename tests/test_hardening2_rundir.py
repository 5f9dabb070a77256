"""Hardening, round two (issue 30): a run directory cannot be turned against its owner.

Every file gantk writes in a run is opened without following links (a planted symlink or hard
link is refused with a paragraph naming it, and the file it points at is never written); a
folder is a gantk run only with its marker (or as a run made before the marker), and gantk
never writes into any other non-empty folder."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from gantk import Pipeline
from gantk.base.safeio import RunDirError, append_line, atomic_write, open_file
from gantk.store.runmark import RUN_MARKER, claim_dir, is_marked

USER_DATA = "IMPORTANT USER DATA\n"


from test_damaged import cli  # noqa: E402,F401 - the CLI with rich's line wrapping undone


def _spec(ring_spec: dict, steps: int = 4) -> dict:
    ring_spec["train"].update(steps=steps, log_every=2, ckpt_every=2, sample_every=0)
    return ring_spec


@pytest.fixture
def stack(ring_spec, tmp_path) -> Path:
    import tomli_w

    path = tmp_path / "stack.toml"
    path.write_text(tomli_w.dumps(_spec(ring_spec)))
    return path


@pytest.fixture
def victim(tmp_path) -> Path:
    f = tmp_path / "elsewhere" / "precious.txt"
    f.parent.mkdir()
    f.write_text(USER_DATA)
    return f


def _fresh_run(tmp_path: Path, stack: Path, cli) -> Path:
    run = tmp_path / "run"
    code, _, err = cli("train", stack, "--out", run, "--no-progress")
    assert code == 0, err
    return run


# ---------------------------------------------------------------- planted links
@pytest.mark.parametrize("name", [".lock", "metrics.jsonl", "eval.jsonl", "spec.json", "spec.toml"])
def test_a_planted_symlink_in_a_run_is_refused_and_its_target_untouched(name, tmp_path, stack,
                                                                        cli, victim):
    run = _fresh_run(tmp_path, stack, cli)
    f = run / name
    f.unlink(missing_ok=True)
    f.symlink_to(victim)
    code, _, err = cli("train", stack, "--out", run, "--steps", "6", "--no-progress")
    assert code in (2, 3), err
    assert "symbolic link" in err and name in err and "Traceback" not in err
    assert victim.read_text() == USER_DATA  # never truncated, never appended to


@pytest.mark.parametrize("name", [".lock", "metrics.jsonl"])
def test_a_dangling_symlink_never_creates_a_file_outside(name, tmp_path, stack, cli):
    run = tmp_path / "run"
    run.mkdir()
    (run / RUN_MARKER).write_text('{"format": "gantk-run", "version": 1}')
    outside = tmp_path / "outside" / "created_by_gantk"
    outside.parent.mkdir()
    (run / name).symlink_to(outside)
    code, _, err = cli("train", stack, "--out", run, "--no-progress")
    assert code in (2, 3) and "symbolic link" in err, err
    assert not outside.exists()


@pytest.mark.parametrize("sub", ["checkpoints", "samples"])
def test_a_planted_folder_link_is_refused_before_any_clean_up(sub, tmp_path, stack, cli):
    run = _fresh_run(tmp_path, stack, cli)
    other = tmp_path / "other_folder"
    other.mkdir()
    (other / "notes.tmp").write_text(USER_DATA)  # the broad temp clean-up would remove it
    if (run / sub).exists():
        for f in (run / sub).iterdir():
            f.unlink()
        (run / sub).rmdir()
    (run / sub).symlink_to(other, target_is_directory=True)
    code, _, err = cli("train", stack, "--out", run, "--steps", "6", "--no-progress")
    assert code in (2, 3) and "symbolic link" in err and sub in err, err
    assert (other / "notes.tmp").read_text() == USER_DATA and len(list(other.iterdir())) == 1


def test_a_hard_linked_lock_or_log_is_refused(tmp_path, stack, cli, victim):
    run = _fresh_run(tmp_path, stack, cli)
    (run / ".lock").unlink()
    os.link(victim, run / ".lock")
    code, _, err = cli("train", stack, "--out", run, "--steps", "6", "--no-progress")
    assert code in (2, 3) and "hard links" in err, err
    assert victim.read_text() == USER_DATA


def test_safeio_writers_refuse_links_and_fifos(tmp_path, victim):
    link = tmp_path / "link"
    link.symlink_to(victim)
    for write in (lambda: append_line(link, "{}"), lambda: atomic_write(link, "x"),
                  lambda: open_file(link, "a")):
        with pytest.raises(RunDirError, match="symbolic link"):
            write()
    assert victim.read_text() == USER_DATA and link.is_symlink()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(RunDirError, match="not a regular file"):  # and never blocks
        open_file(fifo, "a")
    with open_file(tmp_path / "log.txt", "a") as fh:  # an ordinary file opens as usual
        fh.write("row\n")
    assert (tmp_path / "log.txt").read_text() == "row\n"


# ---------------------------------------------------------------- the run marker
def test_out_at_a_foreign_folder_is_refused_and_nothing_in_it_changes(tmp_path, stack, cli):
    folder = tmp_path / "my_project"
    (folder / "checkpoints").mkdir(parents=True)
    files = {"spec.json": '{"mine": 1}', "spec.toml": "mine = 1\n", "metrics.jsonl": '{"step": 99}\n',
             "eval.jsonl": '{"step": 99}\n', ".draft.tmp": "draft",
             "checkpoints/weights.tmp1": "w", "notes.txt": "n"}
    for name, text in files.items():
        (folder / name).write_text(text)
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    code, _, err = cli("train", stack, "--out", folder, "--no-progress")
    assert code == 2, err
    assert "not a gantk run directory" in err and str(folder) in err and "Fix:" in err
    after = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert after == before  # nothing deleted, truncated or overwritten, no marker or lock added


def test_out_empty_string_is_refused(tmp_path, stack, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    listing = sorted(os.listdir(tmp_path))
    code, _, err = cli("train", stack, "--out", "", "--no-progress")
    assert code == 2 and "--out" in err and "empty" in err, err
    assert sorted(os.listdir(tmp_path)) == listing
    with pytest.raises(RunDirError, match="empty"):
        Pipeline.from_spec(stack).train(out="", progress=False)


def test_a_new_run_is_marked_and_resumes_and_an_empty_folder_is_taken(tmp_path, stack, cli):
    run = _fresh_run(tmp_path, stack, cli)
    assert is_marked(run) and json.loads((run / RUN_MARKER).read_text())["format"] == "gantk-run"
    code, _, err = cli("train", stack, "--out", run, "--steps", "6", "--no-progress")
    assert code == 0 and "resuming" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli("train", stack, "--out", empty, "--no-progress")[0] == 0 and is_marked(empty)


def test_a_run_made_before_the_marker_still_resumes_and_gets_marked(tmp_path, stack, cli):
    run = _fresh_run(tmp_path, stack, cli)
    (run / RUN_MARKER).unlink()  # as gantk wrote runs before the marker existed
    code, _, err = cli("train", stack, "--out", run, "--steps", "6", "--no-progress")
    assert code == 0 and "resuming" in err, err
    assert is_marked(run)
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6]


def test_a_sweep_prepared_run_is_taken(tmp_path):
    run = tmp_path / "cell" / "seed_0"
    run.mkdir(parents=True)
    (run / "sweep_job.json").write_text("{}")
    (run / "sweep.log").write_text("")
    assert claim_dir(run) == run and is_marked(run)


def test_pipeline_save_into_a_foreign_folder_is_refused(tmp_path, ring_spec):
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "spec.json").write_text("{}")
    with pytest.raises(RunDirError, match="not a gantk run"):
        Pipeline.from_spec(_spec(ring_spec)).save(folder)
    assert (folder / "spec.json").read_text() == "{}"


def test_a_planted_marker_link_is_refused(tmp_path, victim):
    run = tmp_path / "r"
    run.mkdir()
    (run / RUN_MARKER).symlink_to(victim)
    with pytest.raises(RunDirError, match="symbolic link"):
        claim_dir(run)
    assert victim.read_text() == USER_DATA


def test_errno_of_a_refused_link_is_not_a_traceback_under_the_cli(tmp_path, stack, cli):
    """A link loop at `.lock` (ELOOP on open) is the same paragraph."""
    run = _fresh_run(tmp_path, stack, cli)
    (run / ".lock").unlink()
    (run / ".lock").symlink_to(run / ".lock")
    code, _, err = cli("train", stack, "--out", run, "--steps", "6", "--no-progress")
    assert code in (2, 3) and "symbolic link" in err and errno.errorcode[errno.ELOOP] not in err


def test_a_full_disk_while_taking_the_lock_names_the_lock_file(tmp_path, ring_spec, monkeypatch):
    """With 0 bytes free the pid could not be written: the message said "(unnamed file)"."""
    import gantk.store.runlock as runlock

    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runlock.os, "pwrite", full)
    with pytest.raises(RunDirError) as err:
        Pipeline.from_spec(_spec(ring_spec)).train(out=tmp_path / "run", progress=False)
    text = err.value.paragraph()
    assert ".lock" in text and "No space left" in text and "unnamed" not in text


def test_a_fifo_named_like_a_sweep_job_file_is_not_read(tmp_path):
    from gantk.store.jobfiles import JOB_FILE, read_job

    run = tmp_path / "cell" / "seed_0"
    run.mkdir(parents=True)
    os.mkfifo(run / JOB_FILE)
    assert read_job(run) == {}  # returns at once instead of blocking on the pipe
