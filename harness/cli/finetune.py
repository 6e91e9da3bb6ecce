"""`pricebench finetune RECIPE`: fine-tune a model on a task's train split (LoRA / QLoRA / full),
cached by adapter id and resumable (docs/finetuning.md)."""
from __future__ import annotations

import json

from harness.cli.common import Verb, count
from harness.errors import InputError


class Finetune(Verb):
    name = "finetune"
    help = "fine-tune a model on a task's train split (LoRA / QLoRA / full): cached, resumable"

    def add_arguments(self, p) -> None:
        p.add_argument("recipe", help="recipe name (finetunes/<name>.yaml) or path to a recipe YAML")
        p.add_argument("--task", help="task name or path to a task YAML (default: the recipe's task)")
        p.add_argument("--base", help="the hf: model to train (replaces the recipe's base; a template needs it)")
        p.add_argument("--max-steps", type=count(1, 10_000_000),
                       help="stop after N optimizer steps (overrides the recipe's; part of the adapter id)")
        p.add_argument("--adapters", help="adapter cache folder (default $PRICEBENCH_ADAPTERS or <cache>/adapters)")
        p.add_argument("--threads", type=count(1, 4096),
                       help="CPU threads (overrides the recipe's; not in the adapter id)")
        p.add_argument("--json", action="store_true", help="print the result as JSON")

    def execute(self, args) -> int:
        from harness.finetune.adapters import finetune
        from harness.finetune.recipe import load_recipe
        from harness.jsonio import finite_json
        from harness.tasks import load_task

        recipe = load_recipe(args.recipe, base=args.base).with_threads(args.threads)
        if not (args.task or recipe.task):
            raise InputError("give --task (the recipe names no task)", path=recipe.path, field="task")
        task = load_task(args.task or recipe.task, data_dir=args.data_dir, strict=args.strict)
        result = finetune(recipe, task, adapters=args.adapters, max_steps=args.max_steps)
        training = result.manifest.get("training") or {}
        if args.json:
            print(json.dumps(finite_json({"adapter_id": result.adapter_id, "path": str(result.path),
                                          "final": str(result.final), "cached": result.cached,
                                          "training": training}), allow_nan=False))
            return 0
        if result.cached:
            print(f"adapter {result.adapter_id} (cached: nothing retrained) -> {result.final}")
        else:
            print(f"trained {recipe.name} on {task.name}: {_trained(training)}\n"
                  f"adapter {result.adapter_id} -> {result.final}")
        where = f" -o adapters={args.adapters}" if args.adapters else ""
        where += f" -o base={args.base}" if args.base else ""
        print(f"evaluate it: pricebench run --task {task.name} --model finetune:{args.recipe}{where}")
        return 0


def _trained(training: dict) -> str:
    """'N steps, T tokens at R tokens/s in S s; validation loss L, MAE $M on K items'."""
    curve = training.get("curve", [])
    last = next((row for row in reversed(curve) if "eval_loss" in row), {})
    mae = next((row["eval_mae"] for row in reversed(curve) if "eval_mae" in row), None)
    validation = f"; validation loss {last['eval_loss']:.4f}" if last else ""
    validation += f", MAE ${mae:,.2f} on {curve[-1].get('eval_mae_items', '?')} items" if mae is not None else ""
    return (f"{training.get('steps')} steps, {training.get('tokens', 0):,} tokens at {training.get('tokens_per_s')} "
            f"tokens/s in {training.get('train_s')} s{validation}")
