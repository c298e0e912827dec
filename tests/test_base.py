import pytest
import torch

from hwsnn import base, neuron


class Counter(base.MemoryModule):
    """A toy stateful module: y[t] = x[t] + number of steps seen so far."""

    def __init__(self):
        super().__init__()
        self.register_memory("count", 0)
        self.register_memory("buf", torch.zeros(3))

    def single_step_forward(self, x):
        self.count = self.count + 1
        self.buf = self.buf + x
        return x + self.count


def test_register_memory_reads_writes_and_resets():
    m = Counter()
    assert m.count == 0
    m(torch.zeros(3))
    m(torch.zeros(3))
    assert m.count == 2
    assert dict(m.named_memories()).keys() == {"count", "buf"}
    m.reset()
    assert m.count == 0 and torch.equal(m.buf, torch.zeros(3))


def test_reset_value_is_not_aliased_by_in_place_updates():
    m = Counter()
    m.buf.add_(5.0)  # in-place on the live memory must not corrupt the reset value
    m.reset()
    assert torch.equal(m.buf, torch.zeros(3))


def test_memories_stay_out_of_state_dict_and_follow_to():
    m = Counter()
    m(torch.ones(3))
    assert "buf" not in m.state_dict() and "count" not in m.state_dict()
    m.double()
    assert m.buf.dtype == torch.float64
    m.reset()
    assert m.buf.dtype == torch.float64  # the reset value moved too


def test_detach_cuts_the_graph():
    m = Counter()
    x = torch.ones(3, requires_grad=True)
    m(x)
    assert m.buf.requires_grad
    m.detach()
    assert not m.buf.requires_grad


def test_default_multi_step_loops_the_single_step():
    m = Counter()
    m.step_mode = "m"
    y = m(torch.zeros(4, 3))
    assert torch.equal(y[:, 0], torch.tensor([1.0, 2.0, 3.0, 4.0]))


@pytest.mark.parametrize("bad", ["x", "S", "", None, 1])
def test_step_mode_validation_names_allowed_values(bad):
    with pytest.raises(ValueError, match="'s', 'm'"):
        neuron.IFNode(step_mode=bad)
    n = neuron.IFNode()
    with pytest.raises(ValueError, match="step_mode"):
        n.step_mode = bad


def test_register_memory_rejects_duplicates_and_clashes():
    m = Counter()
    with pytest.raises(ValueError, match="already registered"):
        m.register_memory("count", 1)
    with pytest.raises(ValueError, match="already has an attribute"):
        m.register_memory("forward", 1)


@pytest.mark.parametrize("shape", [(), (0, 3)])
def test_multi_step_without_time_axis_is_an_error(shape):
    n = neuron.LIFNode(step_mode="m")
    with pytest.raises(ValueError, match="time axis"):
        n(torch.zeros(shape))
