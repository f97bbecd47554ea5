"""``electra tune``: the hyper-parameter search, run by the Prefect flow ``electra-tune`` in ``flows/tune.py``.

The library imports neither Prefect nor DVC, so the command hands its arguments to the flow's module in the
project (the working directory), as ``python -m flows.tune`` would be run by hand:

    electra tune [--trials N] [--parallel K] [--resume]
    electra tune --worker [--trials N] [--parallel K]   # one of several workers sharing tune.storage
    electra tune --apply-best        # dvc exp apply the best trial, then run the whole pipeline
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

from electra_model.errors import ElectraError


def run_tune(args: argparse.Namespace) -> int:
    if not Path("flows/tune.py").is_file():
        raise ElectraError(f"flows/tune.py not found in {Path.cwd()}; run `electra tune` from the project root")
    argv = [f"--trials={args.trials}"] if args.trials else []
    argv += [f"--parallel={args.parallel}"] if args.parallel else []
    argv += ["--resume"] if args.resume else []
    argv += ["--apply-best"] if args.apply_best else []
    argv += ["--worker"] if args.worker else []
    return subprocess.run([sys.executable, "-m", "flows.tune", *argv]).returncode


def add_tune(subcommands: Any) -> None:
    parser = subcommands.add_parser(
        "tune",
        help="search hyper-parameters (tune: in params.yaml); each trial a DVC experiment and an MLflow run",
        description="Run the Optuna study described under tune: in params.yaml, from the project root.",
    )
    parser.add_argument("--trials", type=int, help="trials the study counts in all (default tune.n_trials)")
    parser.add_argument("--parallel", type=int, help="trials at once (default tune.parallel)")
    parser.add_argument("--resume", action="store_true", help="continue the study tune.study in tune.storage")
    parser.add_argument("--apply-best", action="store_true", help="apply the best trial and run the whole pipeline")
    parser.add_argument("--worker", action="store_true",
                        help="join the study as one of several workers sharing tune.storage (created if absent)")
    parser.set_defaults(handler=run_tune)
