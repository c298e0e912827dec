r"""The proof chain of a bundle: three checks, each shown in the report.

1. **Integrity** (:func:`integrity_check`): every file of the bundle matches the bundle digest
   (:func:`targets.bundle.load_bundle` with ``deep=True``: the manifest's digest and seal, every
   file's SHA-256, every table, every hex word).
2. **Simulator = twin**: the simulator's outputs and states equal those of the torch twin rebuilt
   from the export (``hwsnn report``) or of the exported twin (``hwsnn run``), bit for bit
   (:func:`sim.report.build_report`).
3. **Simulator = reference** (:func:`reference_check`): the simulator, run on the reference inputs
   recorded at export time, reproduces every layer's recorded output. A bundle edited and signed
   again by hand passes (1) and, since the twin is rebuilt from the same edited tables, (2), but
   not (3).

"BIT-EXACT: yes" is printed only when all three hold. NumPy only.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from targets.bundle import Bundle

__all__ = ["integrity_check", "reference_check", "proof_of"]


def integrity_check(bundle: Bundle) -> dict:
    """Check (1) as report data; ``bundle`` was loaded (verified) by :func:`targets.bundle.load_bundle`."""
    files = bundle.manifest.get("files", {})
    return {"ok": True, "digest": bundle.digest, "files": len(files) + 1, "tables": len(bundle.tables),
            "bytes": int(sum(m["size"] for m in files.values()))}


def reference_check(bundle: Bundle, *, chunk: int = 64, jit: Optional[bool] = None) -> dict:
    """Check (3): the simulator on the recorded reference inputs vs the recorded outputs of every layer."""
    from .engine import run
    from .report import compare_traces

    ref = bundle.reference()
    if ref is None:
        return {"checked": False, "ok": None, "note": "the bundle records no reference outputs"}
    inputs, outputs = ref
    result = run(bundle, inputs, record="layers", chunk=chunk, jit=jit)
    names = list(outputs)
    sim = {n: {"output": result.traces[n]["output"]} for n in names}
    expected = {n: {"output": outputs[n]} for n in names}
    sec = compare_traces(names, expected, sim)
    unexercised, prev = [], inputs
    for n in names:  # a layer whose input was zero at every step cannot show an edit of its tables
        if not np.any(prev):
            unexercised.append(n)
        prev = outputs[n]
    first = sec.get("first_mismatch")
    if first is not None and "twin" in first:
        first = {**{k: v for k, v in first.items() if k != "twin"}, "reference": first["twin"]}
    return {"checked": True, "ok": bool(sec["bit_exact"]), "steps": int(inputs.shape[0]), "samples": int(inputs.shape[1]),
            "compared": sec["compared"], "values": int(sum(np.asarray(a).size for a in outputs.values())),
            "mismatches": sec["mismatches"], "first_mismatch": first, "unexercised": unexercised}


def proof_of(integrity: Optional[dict], twin_ok: Optional[bool], reference: Optional[dict]) -> Optional[bool]:
    """``True`` only when all three checks ran and hold; ``False`` when one failed; ``None`` when
    one did not run (not proven)."""
    states = [None if integrity is None else integrity.get("ok"), twin_ok,
              None if reference is None else reference.get("ok")]
    if any(s is False for s in states):
        return False
    return True if all(s is True for s in states) else None
