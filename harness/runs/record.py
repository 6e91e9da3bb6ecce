"""The run record: a run folder's manifest.json as typed, versioned classes.

`RunManifest` is what a run is (task, model, identity, items), where and how it ran (sessions,
environment) and what it cost; `Session` is one invocation that worked on it; verifications and
merges are appended records. Every field is optional in the class: a reader (`manifest_io`)
checks what a file must hold and names what it lacks. Unknown keys are kept (`extra="allow"`)
and written back, so an older or newer pricebench's fields survive a read -> write round trip.
Field order is the order the runner has always written, so a dump reads like today's files.

format_version: 1. A manifest without one (written before it existed) is version 1.
"""
from __future__ import annotations

from typing import Any, Union

from pydantic import BaseModel, ConfigDict, Field

from harness.runs.environment import Environment

FORMAT_VERSION = 1
Number = Union[int, float]      # kept as written: a token count stays an int


class Record(BaseModel):
    """Strict (no silent coercion: "12" is not 12), finite numbers, unknown keys kept."""

    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False, populate_by_name=True,
                              validate_assignment=False)

    def as_json(self) -> dict:
        """The JSON object this record is written as: the fields it holds (and any unknown ones)."""
        for name, info in type(self).model_fields.items():     # a default list appended to is held, too
            if name not in self.model_fields_set and getattr(self, name) != info.get_default(call_default_factory=True):
                self.model_fields_set.add(name)
        # python mode: a value JSON lacks (a numpy number in a predictor's run_info) is left to the
        # writer, which writes it as text, as it always has
        return self.model_dump(mode="python", exclude_unset=True, by_alias=True)

    # A read-only JSON view for scripts that index a result's manifest (`result.manifest["kind"]`);
    # pricebench's own modules read the typed fields.
    def __getitem__(self, key: str):
        return self.as_json()[key]

    def __contains__(self, key) -> bool:
        return key in self.as_json()

    def get(self, key: str, default=None):
        return self.as_json().get(key, default)


class Session(Record):
    """One invocation that worked on a run (a resumed run has several)."""

    started: str | None = None
    items: int | None = None                    # items asked in this session
    resumed_from: int | None = None             # items already stored when it began
    environment: dict[str, Any] | None = None           # the predictor's environment (device, batch size...)
    reply_environment: dict[str, Any] | None = None     # the part of it that can change replies
    mixed: dict[str, Any] | None = None         # {key: [before, now]} when resumed under another one
    repairs: list[str] | None = None
    prepare_s: float | None = None
    predict_s: float | None = None
    items_per_s: float | None = None
    finished: str | None = None
    ended: str | None = None                    # interrupted | crashed (a session that ended early)


class Mixed(Record):
    session: int | None = None
    differs: dict[str, Any] | None = None


class Timings(Record):
    prepare_s: float | None = None
    predict_s: float | None = None
    items_per_s: float | None = None


class TrainExcluded(Record):
    """The items the leakage guard left out of a predictor's training data."""

    count: int | None = None
    items: list[Any] | None = None


class VerificationRecord(Record):
    """One `pricebench verify` of the run (harness/runs/verify.py)."""

    at: str | None = None
    checked: int | None = None
    identical: int | None = None
    agreement_pct: float | None = None
    stored_mae: float | None = None
    recomputed_mae: float | None = None
    environment_diff: dict[str, Any] | None = None
    overrides: dict[str, Any] | None = None
    mismatches: list[Any] | None = None


class TrainingRecord(Record):
    """What a fine-tune's evaluation keeps of its training (info.training; harness/finetune/record.py
    writes it, the report's run page and selection view read it: a store alone draws the curve)."""

    adapter_id: str | None = None
    checkpoint: int | None = None               # None: the final adapter
    recipe: str | None = None
    recipe_file: str | None = None              # finetunes/<file>, when the recipe lives in the repository
    settings: dict[str, Any] | None = None
    base: str | None = None
    method: str | None = None
    objective: str | None = None
    steps: int | None = None
    train_s: Number | None = None
    tokens_per_s: Number | None = None
    trainable_parameters: int | None = None
    total_parameters: int | None = None
    train_items: int | None = None
    validation_items: int | None = None
    curve: list[dict[str, Number]] | None = None    # rows {step, loss?, eval_loss?, eval_mae?}


class MergeRecord(Record):
    """Items another copy of the run contributed (harness/runs/merge.py)."""

    items: int | None = None
    source: str | None = Field(default=None, alias="from")
    at: str | None = None


class RunManifest(Record):
    """A run folder's manifest.json (see the module docstring)."""

    format_version: int | None = None
    run_id: str | None = None
    task: str | None = None
    model: str | None = None
    quant: str | None = None
    prompt_style: str | None = None
    options: dict[str, Any] | None = None
    identity: dict[str, Any] | None = None      # what the run id hashes (harness.runs.store.run_id)
    n_items: int | None = None
    item_ids: list[str] | None = None
    scoring_version: str | None = None
    bootstrap: dict[str, Any] | None = None
    data_source: str | None = None
    created: str | None = None
    sessions: list[Session] = Field(default_factory=list)
    in_context: dict[str, Any] | None = None    # the in-context examples' settings, as option keys
    train_excluded: TrainExcluded | None = None
    label: str | None = None
    kind: str | None = None
    versions: dict[str, str] | None = None
    hardware: dict[str, Any] | None = None
    info: dict[str, Any] | None = None          # the predictor's run_info (its training record: info.training)
    mixed: list[Mixed] | None = None
    status: str | None = None
    updated: str | None = None
    usage: dict[str, Number] | None = None
    cost_usd: float | None = None
    timings: Timings | None = None
    verifications: list[VerificationRecord] | None = None
    merged: list[MergeRecord] | None = None
    provenance: str | None = None               # a published figure: "published"
    source: str | None = None                   # and where it was published

    @property
    def environment(self) -> Environment:
        return Environment(versions=dict(self.versions or {}), hardware=dict(self.hardware or {}))

    def set_environment(self, environment: Environment) -> None:
        self.versions, self.hardware = dict(environment.versions), dict(environment.hardware)

    @property
    def task_identity(self) -> dict:
        """The task part of the identity (name, slice, data hash, prompts); {} when it has none."""
        value = (self.identity or {}).get("task")
        return value if isinstance(value, dict) else {}

    @property
    def model_identity(self) -> dict:
        value = (self.identity or {}).get("model")
        return value if isinstance(value, dict) else {}

    @property
    def run_info(self) -> dict:
        return self.info or {}

    @property
    def training(self) -> dict | None:
        """The training record of a fine-tune's evaluation (harness/finetune/record.py), as stored."""
        value = self.run_info.get("training")
        return value if isinstance(value, dict) else None

    @property
    def display_name(self) -> str:
        return self.label or self.model or ""

    def answered_environments(self) -> list[dict | None]:
        """The reply environment of every session that asked items, oldest first."""
        return [s.reply_environment for s in self.sessions if s.items]

    def copy_record(self) -> "RunManifest":
        """An independent copy (merging and resuming change their own)."""
        return self.model_copy(deep=True)
