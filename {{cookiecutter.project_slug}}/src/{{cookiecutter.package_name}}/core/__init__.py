"""Core: config, errors, atomic files, tracking and the contract between the layers. Imports no other layer."""
