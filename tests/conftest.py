"""Template test session set-up, and the default project the e2e scenarios share.

Setting a project up (`make setup`) and training it (a cold `make pipeline`, with tuning) are the slow steps
of the e2e tier, and most scenarios start from the same state. They are done once per session, here: the
default bake is set up, saved, trained and saved again; a scenario restores the state it starts from
(`bakery.Snapshot`) instead of repeating them.

`make test` runs on two workers (pytest-xdist, `--dist loadgroup`). The e2e tests of one module share state
that the module sets up once and go through it in order, so each module's e2e tests form one group: one
worker runs them all, in order. A worker sets up and trains the default project when its first scenario
needs it, so the two workers may each do it once.
"""

import os

import pytest

from bakery import Snapshot, commit, set_up, sh

# `make test` runs these tests; the commands they run in baked projects are a user's commands, from a
# shell with no parent make. Without this, every nested `make` prints "Entering directory" lines and
# inherits the outer make's flags.
for variable in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS"):
    os.environ.pop(variable, None)


@pytest.fixture(scope="session")
def set_up_default(tmp_path_factory) -> Snapshot:
    """The default bake after `make setup` (uv.lock made, .venv synced), untrained."""
    return Snapshot.take(set_up(tmp_path_factory.mktemp("default")), "set-up")


@pytest.fixture(scope="session")
def trained_default(set_up_default: Snapshot) -> Snapshot:
    """The set-up default bake after its first, cold `make pipeline` (every stage, tuning included), committed
    as a user would. Its log is the first run's output."""
    project = set_up_default.restore()
    first = sh(project, "make", "pipeline")
    commit(project, "First run")
    return Snapshot.take(project, "trained", log=first.stdout + first.stderr)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Group each module's e2e tests (see above); fast and lint tests are independent and spread one by one."""
    for item in items:
        if item.get_closest_marker("e2e") and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
