"""Imports every twin module so that their converters are registered (see :mod:`.convert`)."""

import importlib

for _name in ("neuron", "synapse", "dense", "conv", "dropout", "delay", "voting", "pool"):
    try:
        importlib.import_module(f"hwsnn.fixed.{_name}")
    except ModuleNotFoundError as _exc:  # a twin module not written yet
        if _exc.name != f"hwsnn.fixed.{_name}":
            raise
