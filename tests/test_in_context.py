"""In-context examples: leakage, determinism, identity, rendering, the index cache, bad options,
the kNN baseline and the report's prompting comparison (real items; TF-IDF and BM25 indexes)."""
from __future__ import annotations

import json
import statistics

import pytest

import harness
from harness.errors import InputError
from harness.predictors import ModelSpec, Predictor, Reply, make_predictor, register_backend
from harness.prompts import build_requests
from harness.retrieval import indexes
from harness.runs.runner import run_identity
from harness.tasks import load_task
from tests._hostile import assert_one_line_error, cli
from tests._in_context_support import course_rag_message, planted_task
from tests._suite_support import register

class PromptLength(Predictor):
    """A test backend whose reply is its prompt's length: it changes whenever the prompt does."""

    def predict_batch(self, requests):
        return [Reply(raw=f"{len(r.prompt or json.dumps(r.messages))}.00") for r in requests]


SETTINGS = [{"shots": 5}, {"shots": 64}, {"shots": 5, "shot_selector": "nearest"},
            {"shots": 5, "shot_selector": "nearest", "retriever": "bm25"}]


@pytest.fixture(autouse=True)
def _fresh_cache(tmp_path, monkeypatch):
    """Each test builds its indexes in its own cache (nothing remembered in this process either)."""
    monkeypatch.setenv("PRICEBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(indexes, "_LOADED", {})
    register()
    register_backend("promptlength", PromptLength)


@pytest.fixture
def planted(tmp_path, data_dir):
    return planted_task(tmp_path / "data", data_dir)


def _task(planted, **in_context):
    path, _ = planted
    return load_task(path, data_dir=path.parent).with_in_context(in_context)


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: "-".join(map(str, s.values())))
def test_a_planted_copy_of_an_evaluation_item_is_never_shown(planted, setting):
    task = _task(planted, **setting)
    copied = task.eval_items()[5]               # the planted copy has its text, under another id and price
    for style in ("base", "chat"):
        requests = build_requests(task, task.eval_items(), style)
        shown = {shot.item.id for r in requests for shot in r.shots}
        assert "planted-copy" not in shown and not shown & {item.id for item in task.eval_items()}
        assert all(len(r.shots) == setting["shots"] for r in requests)
        for r in requests:
            text = r.prompt if style == "base" else "".join(m["content"] for m in r.messages)
            assert (copied.text in text) == (r.item.id == copied.id)      # only in its own question


def test_nearest_shots_skip_a_copy_of_the_asked_item_even_when_the_split_keeps_it(planted):
    """Item 30 is not evaluated, so the task keeps its copy in the train split; asked about item 30,
    the retriever ranks the copy first, and it is still never shown."""
    task = _task(planted, shots=3, shot_selector="nearest")
    _, items = planted
    assert "planted-30" in {item.id for item in task.train_items()}
    index, _ = indexes.load_index([item.text for item in task.train_items()], task.train_hash, "tfidf")
    nearest, _ = index.search([items[30].text], 1)
    assert task.train_items()[nearest[0][0]].id == "planted-30"            # the retriever's first choice ...
    asked = build_requests(task, [items[30]], "base")[0]
    assert "planted-30" not in [shot.item.id for shot in asked.shots]     # ... is never shown
    assert len(asked.shots) == 3 and asked.shots[0].score >= asked.shots[-1].score


def test_same_setting_twice_gives_the_same_prompts_and_random_shots_are_fixed(planted, monkeypatch, tmp_path):
    for n, setting in enumerate(SETTINGS):
        first = build_requests(_task(planted, **setting), _task(planted).eval_items(), "base")
        monkeypatch.setattr(indexes, "_LOADED", {})          # rebuilt from scratch in another cache: the same
        monkeypatch.setenv("PRICEBENCH_CACHE", str(tmp_path / f"again-{n}"))
        again = build_requests(_task(planted, **setting), _task(planted).eval_items(), "base")
        assert [r.prompt for r in first] == [r.prompt for r in again]
        if "shot_selector" not in setting:                  # random: one draw for every item of the run
            assert len({tuple(s.item.id for s in r.shots) for r in first}) == 1
    seeded = build_requests(_task(planted, shots=5, shot_seed=7), _task(planted).eval_items(), "base")
    default = build_requests(_task(planted, shots=5), _task(planted).eval_items(), "base")
    assert [s.item.id for s in seeded[0].shots] != [s.item.id for s in default[0].shots]


def test_rendering_base_and_the_course_rag_message(planted):
    task = _task(planted, shots=2, shot_selector="nearest")
    item = task.eval_items()[3]
    base = build_requests(task, [item], "base")[0]
    a, b = (shot.item for shot in base.shots)
    question = "How much does this cost to the nearest dollar?\n\n{}\n\nPrice is $"
    assert base.prompt == (question.format(a.text) + f"{round(a.price)}.00\n\n" + question.format(b.text)
                           + f"{round(b.price)}.00\n\n" + question.format(item.text))
    chat = build_requests(task, [item], "chat")[0]
    assert list(chat.messages) == [
        {"role": "system", "content": "You estimate prices of items. Reply only with the price, no explanation"},
        {"role": "user", "content": course_rag_message(item.text, [a, b])},
        {"role": "assistant", "content": "Price is $"}]
    turns = build_requests(task.with_in_context({"shot_format": "turns"}), [item], "chat")[0]
    assert [m["role"] for m in turns.messages] == ["system", "user", "assistant", "user", "assistant", "user",
                                                   "assistant"]
    assert turns.messages[2]["content"] == f"Price is ${a.price:.2f}" and turns.messages[-1]["content"] == "Price is $"


def test_identity_changes_with_k_selector_seed_and_index_and_not_for_zero_shots(planted, data_dir, tmp_path):
    predictor = make_predictor(ModelSpec("openai:gpt-4o-mini"))
    amazon8 = load_task("amazon8", data_dir=data_dir)
    assert run_identity(amazon8.with_in_context({"shots": 0}), predictor.spec, predictor)[1] == "1938f00e556f2a74"
    ids = {run_identity(_task(planted, **s), predictor.spec, predictor)[1] for s in
           [{}, {"shots": 1}, {"shots": 5}, {"shots": 5, "shot_seed": 7}, {"shots": 5, "shot_selector": "nearest"},
            {"shots": 5, "shot_selector": "nearest", "retriever": "bm25"}, {"shots": 5, "shot_format": "turns"}]}
    assert len(ids) == 7
    # another train split (one item fewer) is another index, so another run
    path, _ = planted
    lines = (path.parent / "train.jsonl").read_text().splitlines()
    other = planted_task(tmp_path / "other", data_dir)[0]
    (other.parent / "train.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    setting = {"shots": 5, "shot_selector": "nearest"}
    one, two = _task(planted, **setting), load_task(other, data_dir=other.parent).with_in_context(setting)
    assert one.identity()["in_context"]["index"] != two.identity()["in_context"]["index"]
    assert run_identity(one, predictor.spec, predictor)[1] != run_identity(two, predictor.spec, predictor)[1]


@pytest.mark.parametrize("retriever", ["tfidf", "bm25"])
def test_the_index_is_built_once_then_a_cache_hit(planted, retriever, monkeypatch):
    task = _task(planted, shots=3, shot_selector="nearest", retriever=retriever)
    texts = [item.text for item in task.train_items()]
    _, built = indexes.load_index(texts, task.train_hash, retriever)
    folder = indexes.index_folder(retriever, built["index"])
    stamp = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    monkeypatch.setattr(indexes, "_LOADED", {})
    _, again = indexes.load_index(texts, task.train_hash, retriever)
    assert (built["cached"], again["cached"], again["index"]) == (False, True, built["index"])
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamp
    assert json.loads((folder / "meta.json").read_text())["identity"]["train_hash"] == task.train_hash


def test_a_run_records_the_shots_and_resumes_with_the_same_prompts(planted, store, capsys):
    path, _ = planted
    task = load_task(path, data_dir=path.parent)
    first = harness.run(task, "promptlength:x", in_context={"shots": 2, "shot_selector": "nearest"}, store=store)
    records = [json.loads(line) for line in (first.path / "predictions.jsonl").read_text().splitlines()]
    assert all(len(r["shots"]) == 2 for r in records) and "planted-copy" not in str(records)
    assert first.manifest["in_context"] == {"shots": 2, "shot_selector": "nearest", "retriever": "tfidf"}
    assert first.manifest["label"].endswith("· 2-shot nearest (tfidf)")
    again = harness.run(task, "promptlength:x", in_context={"shots": 2, "shot_selector": "nearest"}, store=store)
    assert again.cached and again.run_id == first.run_id
    zero = harness.run(task, "promptlength:x", store=store)
    assert zero.run_id != first.run_id and "shots" not in zero.df and "in_context" not in zero.manifest
    # verify rebuilds the run with its examples: the same prompts, so the same identity and replies
    code, out, err = cli(capsys, "verify", first.run_id, "--store", store, "--task", path, "--data-dir", path.parent,
                         "--items", "5")
    assert code == 0 and "5/5 replies identical" in out, err


def test_knn_baselines_answer_from_the_shown_neighbours(planted, store):
    path, _ = planted
    task = load_task(path, data_dir=path.parent)
    prices = {item.id: item.price for item in task.train_items()}
    setting = {"shots": 3, "shot_selector": "nearest", "retriever": "bm25"}
    median = harness.run(task, "baseline:knn", in_context=setting, store=store)
    weighted = harness.run(task, "baseline:knn-weighted", in_context=setting, store=store)
    for record in median.df.to_dict("records"):
        assert record["guess"] == pytest.approx(statistics.median(prices[i] for i in record["shots"]))
    requests = {r.item.id: r for r in build_requests(task.with_in_context(setting), task.eval_items(), "base")}
    for record in weighted.df.to_dict("records"):
        shots = requests[record["id"]].shots
        expected = sum(s.item.price * s.score for s in shots) / sum(s.score for s in shots)
        assert record["guess"] == pytest.approx(expected, rel=1e-6)
    assert median.run_id != weighted.run_id and median.manifest["kind"] == "baseline"


@pytest.mark.parametrize("argv, needles", [
    (["--shots", "-1"], ["--shots"]),
    (["--shots", "65"], ["--shots", "65"]),
    (["--shots", "2", "--shot-selector", "closest"], ["--shot-selector", "closest"]),
    (["--shots", "2", "--retriever", "bm25"], ["--retriever", "--shot-selector nearest"]),
    (["--shots", "2", "--shot-selector", "nearest", "--shot-seed", "3"], ["--shot-seed"]),
    (["--shot-selector", "nearest"], ["--shot-selector", "--shots K"]),
    (["--shots", "2", "--shot-selector", "nearest", "--retriever", "chroma"], ["--retriever", "chroma"]),
    (["--shots", "2", "--shot-format", "turns", "--prompt", "base"], ["--shot-format", "--prompt chat"]),
])
def test_bad_in_context_options_are_one_line_errors_naming_the_option(planted, capsys, tmp_path, argv, needles):
    path, _ = planted
    code, _, err = cli(capsys, "run", "--task", path, "--data-dir", path.parent, "--store", tmp_path / "runs",
                       "--model", "testonly:echo", *argv)
    assert_one_line_error(code, err, *needles)
    assert not (tmp_path / "runs").exists()


def test_predictors_that_cannot_read_shots_refuse_them(planted, store):
    path, _ = planted
    task = load_task(path, data_dir=path.parent)
    with pytest.raises(InputError) as err:
        harness.run(task, "baseline:constant-mean", in_context={"shots": 2}, store=store)
    assert err.value.field == "shots" and "drop --shots" in str(err.value)
    with pytest.raises(InputError) as err:
        harness.run(task, "baseline:knn", store=store)
    assert err.value.field == "shots" and "--shot-selector nearest" in str(err.value)
    with pytest.raises(InputError) as err:
        harness.run(task, "testonly:echo", in_context={"shotz": 2}, store=store)
    assert err.value.field == "shotz" and "did you mean 'shots'" in str(err.value)
    assert not store.exists() or not any(store.iterdir())


def test_task_and_leaderboard_in_context_errors_name_file_line_and_field(planted, data_dir, tmp_path, capsys):
    path, _ = planted
    bad, _ = planted_task(tmp_path / "bad", data_dir, extra_yaml="in_context: {shots: 5, retriever: bm25}\n")
    with pytest.raises(InputError) as err:
        load_task(bad, data_dir=bad.parent)
    assert (err.value.path, err.value.line, err.value.field) == (bad, 14, "in_context.retriever")
    good, _ = planted_task(tmp_path / "good", data_dir, extra_yaml="in_context: {shots: 2}\n")
    task = load_task(good, data_dir=good.parent)
    assert task.in_context.shots == 2 and "in_context" in task.identity()
    assert not task.with_in_context({"shots": 0}).in_context.active
    store = tmp_path / "runs"       # the task's default applies where it can, and is no error elsewhere
    assert harness.run(task, "testonly:echo", store=store).manifest["in_context"] == {"shots": 2,
                                                                                      "shot_selector": "random",
                                                                                      "shot_seed": 42}
    assert "in_context" not in harness.run(task, "baseline:constant-mean", store=store).manifest
    code, out, err = cli(capsys, "run", "--task", good, "--data-dir", good.parent, "--store", store, "--model",
                         "baseline:constant-mean", "--json")
    assert code == 0 and json.loads(out)["cached"], err
    from harness.suite import load_leaderboard

    board = tmp_path / "board.yaml"
    board.write_text(f"name: ic\ntasks: [{path}]\nmodels:\n  - model: testonly:echo\n    shots: [0, 2]\n"
                     f"    shot_selector: [random, nearest]\n    retriever: [tfidf, bm25]\n")
    jobs = load_leaderboard(board).jobs
    assert sorted(j.describe().split("| ")[1] for j in jobs) == sorted(
        ["testonly:echo zero-shot", "testonly:echo 2-shot random", "testonly:echo 2-shot nearest (tfidf)",
         "testonly:echo 2-shot nearest (bm25)"])
    board.write_text(f"name: ic\ntasks: [{path}]\nmodels:\n  - model: testonly:echo\n    shots: [2, many]\n")
    with pytest.raises(InputError) as err:
        load_leaderboard(board)
    assert (err.value.line, err.value.field) == (5, "models.0.shots")


def test_the_report_compares_each_in_context_setting_with_the_zero_shot_run(planted, tmp_path, store):
    from harness.report import report_for_store

    path, _ = planted
    task = load_task(path, data_dir=path.parent)
    for setting in (None, {"shots": 2}, {"shots": 2, "shot_selector": "nearest"}):
        harness.run(task, "testonly:echo", in_context=setting, store=store)
    index = report_for_store(store=store, out_dir=tmp_path / "report")
    compare = (index.parent / "compare.html").read_text()
    section = compare.split("In-context examples")[1]
    assert "zero-shot" in section and "2-shot random" in section and "2-shot nearest (tfidf)" in section
    assert section.count("p = ") + section.count("p &lt; 0.001") == 2          # each against zero-shot
    pages = [p.read_text() for p in (index.parent / "runs").glob("*.html")]
    assert sum("shown: " in page for page in pages) == 2 and sum("In-context examples" in p for p in pages) == 2


@pytest.mark.slow
def test_embeddings_neighbours_are_cached_leak_nothing_and_do_not_depend_on_the_batch(planted, monkeypatch):
    pytest.importorskip("sentence_transformers")
    task = _task(planted, shots=3, shot_selector="nearest", retriever="embeddings")
    requests = build_requests(task, task.eval_items(), "chat")
    assert "planted-copy" not in {shot.item.id for r in requests for shot in r.shots}
    folder = next((indexes.cache_root() / "retrieval").glob("embeddings-*"))
    assert (folder / "embeddings.faiss").exists() and not list(folder.parent.glob(".*chunks"))
    stamp = (folder / "embeddings.faiss").stat().st_mtime_ns
    monkeypatch.setattr(indexes, "_LOADED", {})
    alone = build_requests(task, task.eval_items()[7:9], "chat")        # another batch of asked items
    assert [r.messages for r in alone] == [r.messages for r in requests[7:9]]
    assert (folder / "embeddings.faiss").stat().st_mtime_ns == stamp     # loaded, not rebuilt
    similar = [s.score for r in requests for s in r.shots]
    assert all(-1.0 <= s <= 1.0 for s in similar) and statistics.mean(similar) > 0.3


@pytest.mark.parametrize("values, field", [
    ({"shots": "9" * 5000}, "shots"), ({"shots": float("nan")}, "shots"), ({"shots": True}, "shots"),
    ({"shots": [1]}, "shots"), ({"shots": 2, "shot_selector": "x" * 500}, "shot_selector"),
    ({"shots": 2, "shot_selector": "nearest", "retriever": {"a": 1}}, "retriever"),
    ({"shots": 2, "shot_seed": -1}, "shot_seed"), ({"shots": 2, "shot_format": None, "extra": 1}, "extra")])
def test_hostile_in_context_values_are_short_errors_naming_the_key(values, field):
    from harness.retrieval import merge

    with pytest.raises(InputError) as err:
        merge(None, values)
    assert err.value.field == field and len(str(err.value)) < 200
