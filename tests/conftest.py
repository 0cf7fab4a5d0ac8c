"""Template test session set-up."""

import os

# `make test` runs these tests; the commands they run in baked projects are a user's commands, from a
# shell with no parent make. Without this, every nested `make` prints "Entering directory" lines and
# inherits the outer make's flags.
for variable in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS"):
    os.environ.pop(variable, None)
