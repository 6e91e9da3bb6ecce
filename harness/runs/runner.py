"""Run one predictor on one task: the only place that ties the data path together.

items -> requests (prompts) -> predictor replies -> parsed prices -> per-item scores
-> predictions.jsonl (resumable) -> metrics.json. Same identity = same folder = no recompute.
The run folder is locked while this process works on it, so parallel runs of one spec
finish it exactly once; a damaged folder keeps its good lines and recomputes the rest.
"""
from __future__ import annotations

import datetime as dt
import math
import sys
import time

from harness.errors import InputError, Interrupted, interrupts_deferred
from harness.predictors import ModelSpec, make_predictor
from harness.progress import progress_bar
from harness.prompts import build_requests
from harness.scoring import (BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED, MAX_GUESS, SCORING_VERSION, parse_price,
                             score_item)
from harness.retrieval.config import check_reader, task_for
from harness.runs.results import (RunResult, finished_fields, published_result, records_frame, result_from,
                             run_metrics)
from harness.runs.environment import capture_environment
from harness.runs.record import Mixed, RunManifest, Session, TrainExcluded
from harness.runs.store import Inspection, RunFolder, RunStore, run_id
from harness.tasks import Task, load_task

def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def make_record(request, reply) -> dict:
    """One predictions.jsonl line: reply, parsed price and the course's per-item score."""
    truth = request.item.price
    price = reply.price if reply.price is not None else parse_price(reply.raw)
    if price is not None and not (math.isfinite(price) and abs(price) <= MAX_GUESS):
        price = None                                  # a regressor's or decoder's absurd number: a failure
    guess = price if price is not None else 0.0      # the course: no number = a guess of 0
    record = {"id": request.item.id, "title": request.item.title, "category": request.item.category,
              "prompt_hash": request.prompt_hash, "raw": reply.raw,
              "price": price, "guess": guess, "truth": truth, **score_item(guess, truth), "parsed": price is not None,
              "failure": reply.error, "usage": reply.usage or {}, "latency_s": reply.latency_s}
    if request.shots:                                 # the in-context examples it was shown, by id
        record["shots"] = [shot.item.id for shot in request.shots]
    return record


def run(task, model: str, *, quant: str = "none", prompt: str | None = None, options: dict | None = None,
        eval_slice: str | None = None, data_dir=None, store=None, progress=None,
        allow_mixed: bool = False, in_context: dict | None = None, proxy=None) -> RunResult:
    """Run `model` (e.g. 'reference:human', 'hf:<checkpoint>') on `task`; reuse the stored run if any.

    A finished run is returned from the store untouched; a partial or damaged one continues
    where it stopped (keeping every usable line); items whose request failed are asked again.
    Resuming under an environment that can change replies (another batch size for a quantized
    model, another device or library version) is refused unless `allow_mixed`, which marks the
    run mixed. `proxy(predictor)`, if given, returns a stand-in that predicts elsewhere (the Ray
    executor's worker) while this process writes the store. `progress`: None shows a bar on a
    terminal, True / False always / never, or a factory (harness.progress).
    """
    task = task if isinstance(task, Task) else load_task(task, data_dir=data_dir, eval_slice=eval_slice)
    task = task.with_in_context(in_context)
    spec = ModelSpec(name=model, quant=quant, prompt=prompt, options=dict(options or {}))
    predictor = make_predictor(spec)
    task = task_for(task, predictor)
    if proxy is not None:
        predictor = proxy(predictor)
    try:
        published = getattr(predictor, "published", None)
        row = published(task) if published else None
        if row is not None:
            return published_result(task.name, predictor.spec.name, row)
        return _run(task, predictor, RunStore(store), progress, allow_mixed)
    finally:
        predictor.close()


def run_identity(task: Task, spec: ModelSpec, predictor) -> tuple[dict, str]:
    """The identity of a run and its id (its store folder's name), without running anything."""
    check_reader(task.in_context, predictor)
    identity = {"task": task.identity(), "model": spec.identity(predictor.Options.runtime_names()), "predictor": predictor.identity(task),
                "prompt_style": predictor.prompt_style, "scoring": SCORING_VERSION}
    return identity, run_id(identity)


def _label(predictor, manifest: RunManifest) -> str:
    """The predictor's label, and the in-context examples it was shown (one model, several rows)."""
    if not manifest.in_context:
        return predictor.label()
    from harness.retrieval import from_options

    return f"{predictor.label()} · {from_options(manifest.in_context).describe()}"


def _usable(seen: Inspection, requests) -> tuple[dict, int]:
    """Stored records that answer today's requests (same item, prompt and truth), and how many did not."""
    wanted = {r.item.id: r for r in requests}
    keep = {}
    for item_id, record in seen.records.items():
        request = wanted.get(item_id)
        if request and record.get("prompt_hash") == request.prompt_hash and record["truth"] == request.item.price:
            keep[item_id] = record
    return keep, len(seen.records) - len(keep)


def _todo(done: dict, requests) -> list:
    return [r for r in requests if r.item.id not in done or done[r.item.id].get("failure")]


def _run(task: Task, predictor, store: RunStore, progress, allow_mixed: bool = False) -> RunResult:
    spec = predictor.spec
    items = task.eval_items()
    # a predictor that takes no --prompt (recorded runs, baselines) never reads the prompt text
    requests = build_requests(task, items, predictor.prompt_style, reads_prompt=predictor.reads_prompt,
                              progress=progress)
    identity, rid = run_identity(task, spec, predictor)
    folder = store.folder(rid)
    seen = folder.inspect()
    done, _ = _usable(seen, requests)
    if seen.state == "complete" and not _todo(done, requests):
        return result_from(seen)

    # Load / fit / connect before the first write: a predictor that cannot start leaves no folder.
    prepare_s, prepared = 0.0, False
    if _todo(done, requests):
        t0 = time.perf_counter()
        predictor.prepare(task)
        prepare_s, prepared = round(time.perf_counter() - t0, 3), True

    def waited():
        print(f"pricebench: waiting for another process working on run {rid}", file=sys.stderr)

    with folder.lock(on_wait=waited):
        seen = folder.inspect()                # another process may have finished or advanced it
        done, stale = _usable(seen, requests)
        todo = _todo(done, requests)
        if seen.state == "complete" and not todo:
            return result_from(seen)
        notes = [f"repaired: {p}" for p in [*seen.problems, *seen.manifest_problems]]   # a bad field is left out
        if stale:
            notes.append(f"repaired: {stale} stored line(s) did not match today's items or prompts")
        if notes:
            notes.append(f"kept {len(done)} good item(s); recomputing {len(todo)}")
        if todo and not prepared:
            predictor.prepare(task)
        manifest = _manifest(seen, rid, task, spec, predictor, identity, items)
        excluded = task.train_exclusions_if_loaded()
        if excluded is not None:   # the predictor trained: the items the leakage guard left out
            manifest.train_excluded = TrainExcluded(count=len(excluded), items=excluded)
        session = Session(started=_now(), items=len(todo), resumed_from=len(done))
        if todo:
            _describe(manifest, predictor)     # a partial run says what it is, too
            session.environment = predictor.environment()
            session.reply_environment = predictor.reply_environment()
            _check_environment(manifest, session, rid, len(done), allow_mixed)
        if notes:
            session.repairs = notes
        folder.cut_torn_tail()
        folder.remove_metrics()                # unfinished again until this session ends well
        manifest.status, manifest.updated = "running", _now()
        folder.write_manifest(manifest)
        computed = _predict(folder, predictor, todo, done, session, manifest, prepare_s, progress, task)
        return _finish(folder, items, done, manifest, session, predictor, computed, notes)


def _check_environment(manifest: RunManifest, session: Session, rid: str, kept: int, allow_mixed: bool) -> None:
    """Refuse (or, if allowed, record) a resume whose reply-changing environment differs from the
    one that produced the stored items."""
    earlier = manifest.answered_environments()
    before, now = (earlier[-1] if earlier else None), session.reply_environment
    if not kept or before is None:
        return
    differs = {k: [before.get(k), now.get(k)] for k in sorted(set(before) | set(now)) if before.get(k) != now.get(k)}
    if not differs:
        return
    what = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in differs.items())
    if not allow_mixed:
        raise InputError(f"run {rid} has {kept} items from another environment ({what}): resuming would mix two "
                         f"environments' replies under one id. Resume with the same settings, or pass --allow-mixed "
                         f"(the run is then marked mixed)", field="environment")
    session.mixed = differs
    manifest.mixed = [*(manifest.mixed or []), Mixed(session=len(manifest.sessions), differs=differs)]


def _manifest(seen: Inspection, rid, task, spec, predictor, identity, items) -> RunManifest:
    if seen.manifest and seen.manifest.run_id == rid and "sessions" in seen.manifest.model_fields_set:
        return seen.manifest
    manifest = RunManifest(run_id=rid, task=task.name, model=spec.name, quant=spec.quant,
                           prompt_style=predictor.prompt_style, options=spec.options, identity=identity,
                           n_items=len(items), item_ids=[item.id for item in items], scoring_version=SCORING_VERSION,
                           bootstrap={"samples": BOOTSTRAP_SAMPLES, "seed": BOOTSTRAP_SEED},
                           data_source=str(task.data_dir) if task.is_local else "hub", created=_now(), sessions=[])
    if task.in_context.active:       # as option keys: what `verify` and the report read back
        manifest.in_context = task.in_context.as_options()
    return manifest


def _predict(folder: RunFolder, predictor, todo, done, session, manifest, prepare_s, progress, task) -> int:
    """Ask the predictor for `todo`, appending records as they come; Ctrl-C keeps what was saved."""
    if not todo:
        return 0
    session.prepare_s = prepare_s
    computed, t1, last_flush, buffer = 0, time.perf_counter(), time.perf_counter(), []
    bar = progress_bar(progress, len(todo), f"{predictor.spec.name} | {task.name}")
    try:
        for request, reply in predictor.predict(todo):
            record = make_record(request, reply)
            with interrupts_deferred():     # buffer, done and the file stay in step
                buffer.append(record)
                done[record["id"]] = record
                computed += 1
                if len(buffer) >= predictor.batch_size or time.perf_counter() - last_flush > 1.0:
                    folder.append(buffer)
                    buffer, last_flush = [], time.perf_counter()
            bar.update(1)
        if buffer:
            folder.append(buffer)
    except BaseException as error:
        saved = len(done) - len(buffer)
        if buffer and not isinstance(error, OSError):
            try:
                folder.append(buffer)
                saved = len(done)
            except OSError:
                pass
        _mark(folder, manifest, session, "interrupted" if isinstance(error, KeyboardInterrupt) else "crashed")
        if isinstance(error, KeyboardInterrupt):
            raise Interrupted(saved, folder.path) from None
        raise
    finally:
        bar.close()
    session.predict_s = round(time.perf_counter() - t1, 3)
    session.items_per_s = round(computed / max(session.predict_s, 1e-9), 3)
    return computed


def _mark(folder: RunFolder, manifest: RunManifest, session: Session, status: str) -> None:
    """Best effort: say in the manifest how the session ended (a full disk may refuse even this)."""
    try:
        session.finished, session.ended = _now(), status
        manifest.sessions.append(session)
        manifest.status, manifest.updated = status, _now()
        folder.write_manifest(manifest)
    except (OSError, ValueError):
        pass


def _describe(manifest: RunManifest, predictor) -> None:
    """What the run is and where it runs: written when a session starts (so a partial run, or one
    completed by merging imported items, carries it) and refreshed when the run finishes."""
    manifest.label, manifest.kind = _label(predictor, manifest), predictor.kind
    manifest.set_environment(capture_environment())
    manifest.info = {**(manifest.info or {}), **predictor.run_info()}


def finished(manifest: RunManifest, records: list[dict]) -> tuple:
    """Score a run's records (every item, in item order) and mark its manifest finished: status,
    usage, cost and timings over all its sessions; returns (metrics, the per-item DataFrame).
    The one definition of a finished run: for a run that ends here, and for one completed by
    merging imported items (harness.runs.merge)."""
    df = records_frame(records)
    m = run_metrics(df)
    derived = finished_fields(manifest, records, m)
    manifest.status, manifest.updated = derived.status, _now()
    manifest.usage, manifest.cost_usd, manifest.timings = derived.usage, derived.cost_usd, derived.timings
    return m, df


def _finish(folder: RunFolder, items, done, manifest, session, predictor, computed, notes) -> RunResult:
    session.finished = _now()
    records = [done[item.id] for item in items]
    folder.rewrite_predictions(records)
    _describe(manifest, predictor)
    manifest.sessions.append(session)
    m, df = finished(manifest, records)
    folder.write_manifest(manifest)
    folder.write_metrics(m)
    return RunResult(run_id=folder.run_id, path=folder.path, manifest=manifest, metrics=m, df=df, cached=False,
                     computed=computed, notes=notes)
