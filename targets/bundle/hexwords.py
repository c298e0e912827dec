r"""``$readmemh`` words: one full-width two's complement word per line, C order.

A value :math:`v` at :math:`b` bits is written as :math:`v \bmod 2^b` with :math:`\lceil b/4 \rceil`
lowercase hex digits (``-3`` at 8 bits is ``fd``, at 12 bits ``ffd``, at 4 bits ``d``): a shorter
word would be zero-extended by Verilog and read back as a positive number.
"""

from __future__ import annotations

import numpy as np

__all__ = ["hex_words", "hex_text", "parse_hex"]

_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _check_range(flat: np.ndarray, bits: int, signed: bool) -> None:
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if flat.size and (int(flat.min()) < lo or int(flat.max()) > hi):
        bad = flat[(flat < lo) | (flat > hi)][0] if bits < 64 else flat.min()
        raise ValueError(f"hex words: {int(bad)} does not fit {bits} {'signed' if signed else 'unsigned'} bits")


def hex_text(values: np.ndarray, bits: int, signed: bool = True) -> bytes:
    """The ``.mem`` file of ``values`` (C order) at ``bits`` bits: one word and ``\\n`` per value."""
    if not 1 <= bits <= 64:
        raise ValueError(f"hex words: word width must be 1..64 bits; got {bits}")
    flat = np.asarray(values).reshape(-1)
    if flat.dtype.kind not in "iub":
        raise ValueError(f"hex words: integer values only; got {flat.dtype}")
    _check_range(flat, bits, signed)
    digits = (bits + 3) // 4
    u = flat.astype(np.int64).view(np.uint64) if flat.dtype.kind != "u" else flat.astype(np.uint64)
    if bits < 64:
        u = u & np.uint64((1 << bits) - 1)
    out = np.empty((flat.size, digits + 1), np.uint8)
    for j in range(digits):
        out[:, j] = _DIGITS[((u >> np.uint64(4 * (digits - 1 - j))) & np.uint64(15)).astype(np.intp)]
    out[:, digits] = ord("\n")
    return out.tobytes()


def hex_words(values: np.ndarray, bits: int, signed: bool = True) -> list[str]:
    """The words of :func:`hex_text` as strings (without newlines)."""
    return hex_text(values, bits, signed).decode("ascii").split("\n")[:-1]


def parse_hex(lines: "list[str] | bytes | str", bits: int, signed: bool) -> np.ndarray:
    """The integers of ``$readmemh`` words (inverse of :func:`hex_words`) as int64 (uint64 for
    unsigned 64-bit); a word wider than ``bits`` or not hexadecimal is an error naming its line."""
    if isinstance(lines, (bytes, str)):
        text = lines.decode("ascii", errors="replace") if isinstance(lines, bytes) else lines
        lines = text.splitlines()
    mask = (1 << bits) - 1
    out = []
    for i, line in enumerate(lines):
        word = line.strip()
        if not word:
            continue
        try:
            u = int(word, 16)
        except ValueError:
            raise ValueError(f"parse_hex: line {i + 1} ({word!r}) is not a hexadecimal word") from None
        if u > mask or word.startswith(("-", "+", "0x", "0X")):
            raise ValueError(f"parse_hex: line {i + 1} ({word!r}) is wider than {bits} bits")
        out.append(u - (1 << bits) if signed and u >> (bits - 1) else u)
    return np.array(out, dtype=np.uint64 if (not signed and bits == 64) else np.int64)
