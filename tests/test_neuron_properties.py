"""Property tests: random neuron configurations against the independent NumPy reference."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsnn import neuron
from test_neuron import reference

configs = st.fixed_dictionaries({
    "kind": st.sampled_from(["if", "lif"]),
    "tau": st.floats(1.05, 20.0),
    "decay_input": st.booleans(),
    "v_threshold": st.floats(0.1, 3.0),
    "v_reset": st.one_of(st.none(), st.floats(-1.0, 0.5)),
    "T": st.integers(1, 12),
    "n": st.integers(1, 9),
    "scale": st.floats(0.1, 4.0),
    "seed": st.integers(0, 2**31 - 1),
    "step_mode": st.sampled_from(["s", "m"]),
})


@settings(max_examples=60, deadline=None)
@given(configs)
def test_random_configurations_match_the_reference(c):
    g = torch.Generator().manual_seed(c["seed"])
    x = torch.randn(c["T"], c["n"], generator=g, dtype=torch.float64) * c["scale"]
    kw = dict(v_threshold=c["v_threshold"], v_reset=c["v_reset"], step_mode=c["step_mode"], store_v_seq=True)
    if c["kind"] == "lif":
        n = neuron.LIFNode(tau=c["tau"], decay_input=c["decay_input"], **kw)
        ref_kw = dict(tau=c["tau"], decay_input=c["decay_input"])
    else:
        n = neuron.IFNode(**kw)
        ref_kw = {}
    if c["step_mode"] == "m":
        s, v_seq = n(x), n.v_seq
    else:
        pairs = [(n(x[t]), n.v.clone()) for t in range(c["T"])]
        s, v_seq = torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
    s_ref, v_ref = reference(x.numpy(), c["kind"], v_threshold=c["v_threshold"], v_reset=c["v_reset"], **ref_kw)
    # the module evaluates the same float64 expressions in the same order: spikes are identical
    np.testing.assert_array_equal(s.numpy(), s_ref)
    np.testing.assert_allclose(v_seq.numpy(), v_ref, rtol=1e-9, atol=1e-9)
