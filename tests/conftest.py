"""Template test session set-up, and the default project the e2e scenarios share.

Setting a project up (`make setup`) and training it (a cold `make pipeline`, with tuning) are the slow steps
of the e2e tier, and most scenarios start from the same state. They are done once per session, here: the
default bake is set up, saved, trained and saved again; a scenario restores the state it starts from
(`bakery.Snapshot`) instead of repeating them. Every bake's `make setup` starts from the run's first set-up
environment (`bakery.EnvironmentSeed`), so the installed packages are compiled once per run.

`make test` runs on two workers (pytest-xdist, `--dist loadgroup`). The e2e tests of one module share state
that the module sets up once and go through it in order, so each module's e2e tests form one group: one
worker runs them all, in order. A module whose e2e tests are independent names a group per test instead
(`pytest.mark.xdist_group`), so that the two workers can share them. A worker sets up the default project
when its first scenario needs it; it is trained once per run, by whichever worker needs it first
(trained_default).
"""

import json
import os
from pathlib import Path

import pytest

from bakery import EnvironmentSeed, Snapshot, commit, exclusive, relocate, set_up, sh

# `make test` runs these tests; the commands they run in baked projects are a user's commands, from a
# shell with no parent make. Without this, every nested `make` prints "Entering directory" lines and
# inherits the outer make's flags.
for variable in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS"):
    os.environ.pop(variable, None)


@pytest.fixture(scope="session")
def run_folder(tmp_path_factory, worker_id: str) -> Path:
    """A folder all the xdist workers of this run share (each worker's own temporary folders are inside it)."""
    root = tmp_path_factory.getbasetemp()
    return root if worker_id == "master" else root.parent


@pytest.fixture(scope="session")
def environment_seed(run_folder: Path) -> EnvironmentSeed:
    """The run's seed environment (bakery.EnvironmentSeed)."""
    return EnvironmentSeed(run_folder / "environment-seed")


@pytest.fixture(scope="session")
def set_up_default(tmp_path_factory, environment_seed: EnvironmentSeed) -> Snapshot:
    """The default bake after `make setup` (uv.lock made, .venv synced), untrained."""
    return Snapshot.take(set_up(tmp_path_factory.mktemp("default"), environment_seed), "set-up")


@pytest.fixture(scope="session")
def trained_default(set_up_default: Snapshot, run_folder: Path) -> Snapshot:
    """The set-up default bake after its first, cold `make pipeline` (every stage, tuning included), committed
    as a user would. Its log is the first run's output.

    The pipeline runs once per run: the first worker to need it trains and publishes where its snapshot is, in
    the run's folder; the others wait for that, then copy the snapshot to their own default's path and make it
    theirs (bakery.relocate) instead of training the same model again.
    """
    published = run_folder / "trained.json"  # the publishing worker's snapshot: its path, where it was taken, log
    project = set_up_default.restore()
    with exclusive(run_folder / "trained.lock"):
        if not published.exists():
            first = sh(project, "make", "pipeline")
            commit(project, "First run")
            snapshot = Snapshot.take(project, "trained", log=first.stdout + first.stderr)
            mine = {"project": str(project), "saved": str(snapshot.saved), "log": snapshot.log}
            published.write_text(json.dumps(mine))
            return snapshot
        theirs = json.loads(published.read_text())
    Snapshot(project, Path(theirs["saved"])).restore()
    relocate(project, Path(theirs["project"]))
    return Snapshot.take(project, "trained", log=theirs["log"])


# The order the workers take the groups in (the Makefile's --no-loadscope-reorder keeps it). test_e2e first: it
# sets up the run's first environment (EnvironmentSeed) and trains the default. Meanwhile the other worker takes
# the fast and lint tests, which need neither, one at a time, instead of waiting for them idle. Then the other e2e
# groups, longest first, so that the short ones even out the workers' ends. A worker is sent its next group
# before it starts the last two tests of its current one (xdist's loadgroup), so a long group is claimed early.
RUN_ORDER = (
    "test_e2e",
    "fast and lint",
    "test_bring_your_own_data",
    "test_multiclass",
    "test_regression",
    "test_ci_flows.gitlab",
    "test_spark_batch",
    "test_ci_flows.github",
    "test_e2e_gitops",
    "test_template_update",
    "test_team_server",
    "test_dvc_s3",
    "test_wandb_option",
    "test_k8s",
)


def group(item: pytest.Item) -> str:
    """The item's xdist group: the one it names, else its module's for an e2e test; fast and lint tests have none."""
    named = item.get_closest_marker("xdist_group")
    if named:
        return named.args[0]
    return item.module.__name__ if item.get_closest_marker("e2e") else "fast and lint"


def run_order(item: pytest.Item) -> int:
    """Where an item's group comes in RUN_ORDER; unlisted groups last."""
    key = group(item)
    return RUN_ORDER.index(key) if key in RUN_ORDER else len(RUN_ORDER)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Group each module's e2e tests (see above) and order them; fast and lint tests are spread one by one."""
    for item in items:
        if item.get_closest_marker("e2e") and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
    items.sort(key=run_order)  # stable: each group's tests keep their order
