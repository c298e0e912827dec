r"""The export format of hwsnn: one typed, signed contract between the writer and every reader.

Torch-free (NumPy and the standard library): :mod:`quant` writes bundles, :mod:`sim` reads them,
the twins of :mod:`hwsnn.fixed` turn themselves into op descriptions (``twin.to_spec(...)``) and
back (``from_spec``), and vendor views (Rockpool, netx, NIR) are written beside the network.

* one frozen dataclass per op kind (:mod:`.dense`, :mod:`.conv`, :mod:`.neuron`, :mod:`.recurrent`,
  :mod:`.synapse`, :mod:`.dropout`, :mod:`.delay`, :mod:`.voting`, :mod:`.output_code`, :mod:`.pool`, :mod:`.flatten`,
  :mod:`.xylo_core`), with
  typed fields, its tables and its validation;
* :class:`Network`: the ordered ops, the input and the target, checked as a chain;
* :func:`write_bundle` / :func:`load_bundle`: the directory, atomic and verified (every file's
  SHA-256, the bundle digest, the field seal; :mod:`.store`, :mod:`.seal`).

``docs/EXPORT_FORMAT.md`` documents the format; its op table is generated from these classes
(``python -m targets.bundle.docgen --write docs/EXPORT_FORMAT.md``) and tested against them.
"""

from . import conv, delay, dense, dropout, flatten, neuron, output_code, pool, recurrent, synapse, voting, xylo_core  # noqa: F401 (register)
from .base import FREE, KINDS, OPS, OpSpec, TableFormat, from_dict, op_class
from .conv import Conv2d
from .delay import Delay
from .dense import Dense, delay_width, event_cap_of
from .dropout import DropConnect, Dropout, Dropout2d, keep_threshold_of
from .errors import BundleError, ExportError, NotABundleError, SpecError
from .flatten import Flatten
from .hexwords import hex_text, hex_words, parse_hex
from .network import Network, TableEntry
from .neuron import IF, LIF, NEURON_OPS, Cuba, Neuron, decay_range, spike_cap
from .output_code import OutputCode, default_codebook
from .pool import AvgPool2d, MaxPool2d
from .recurrent import Recurrent
from .seal import canonical_json, digest_of
from .signmode import SIGN_MODES, auto_sign_mode, sign_mode_grid
from .store import (FORMAT, FORMAT_VERSION, Bundle, check_destination, extend_bundle, load_bundle, npz_bytes,
                    read_npz, recover, replace_directory, sha256_of, sign, write_bundle, write_file)
from .synapse import SynapseFilter
from .voting import Voting
from .xylo_core import XyloCore

__all__ = [
    "FORMAT", "FORMAT_VERSION", "KINDS", "OPS", "FREE", "OpSpec", "TableFormat", "from_dict", "op_class",
    "Dense", "Conv2d", "IF", "LIF", "Cuba", "Neuron", "NEURON_OPS", "Recurrent", "SynapseFilter", "Dropout",
    "Dropout2d", "DropConnect", "Delay", "Voting", "OutputCode", "XyloCore", "AvgPool2d", "MaxPool2d", "Flatten",
    "Network", "TableEntry", "Bundle", "BundleError", "NotABundleError", "ExportError", "SpecError",
    "write_bundle", "load_bundle", "extend_bundle", "recover", "check_destination", "sign", "replace_directory",
    "write_file",
    "npz_bytes", "read_npz", "sha256_of", "canonical_json", "digest_of", "hex_text", "hex_words", "parse_hex",
    "delay_width", "event_cap_of", "keep_threshold_of", "decay_range", "spike_cap",
    "SIGN_MODES", "auto_sign_mode", "sign_mode_grid", "default_codebook",
]
