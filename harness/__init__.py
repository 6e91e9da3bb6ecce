"""pricebench: how well does each model guess a product's price?

The data path is the package layout: tasks -> data -> prompts -> predictors -> scoring
-> store -> runner (-> suite -> report).
"""
from harness.errors import InputError

__all__ = ["run", "InputError"]


def run(*args, **kwargs):
    """Run (or fetch from the store) one model on one task; see harness.runs.runner.run."""
    from harness.runs.runner import run as _run

    return _run(*args, **kwargs)
