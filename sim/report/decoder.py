"""The decoder line of the report: how the class is read off the network's last layer, and where.

An ``output_code`` op (:mod:`targets.bundle.output_code`) makes the class the nearest codeword to
the readout spike counts; it runs off the chip (the host, after the readout), and the report's
accuracies (float, twin, simulator) all include it: they are the argmax of the summed class
scores, which is that nearest codeword.
"""

from __future__ import annotations

from typing import Any, Optional

__all__ = ["decoder_section"]


def decoder_section(manifest: dict, fit: Optional[dict] = None) -> Optional[dict[str, Any]]:
    """``{layer, op, classes, readouts, weight, off_chip, text}`` of the export's ``output_code`` op, or
    ``None`` when the network has none. ``off_chip`` is true when the fit check lists the op among the
    ops after the readout (Xylo) or the network has no neuron after it."""
    layers = manifest.get("layers") or []
    for i, entry in enumerate(layers):
        if entry.get("op") != "output_code":
            continue
        par = entry.get("params") or {}
        listed = {o.get("layer") for o in (fit or {}).get("off_chip", [])}
        later = [e.get("op") for e in layers[i + 1:]]
        off = entry.get("name") in listed or not any(op in ("if", "lif", "cuba", "recurrent") for op in later)
        where = "off the chip (on the host, after the readout)" if off else "between layers"
        text = (f"output code {entry.get('name')}: {par.get('classes')} classes on {par.get('readouts')} readouts, "
                f"codewords of {par.get('weight')} ones; class = the nearest codeword to the readout spike counts "
                f"(argmax of the summed scores (2C - 1) x), run {where}; the accuracies include it")
        return {"layer": entry.get("name"), "op": "output_code", "classes": par.get("classes"),
                "readouts": par.get("readouts"), "weight": par.get("weight"), "off_chip": bool(off), "text": text}
    return None
