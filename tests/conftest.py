import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def net_bundles(tmp_path_factory):
    """One exported bundle per network of ``tests.bundle_nets.NETS`` (every op kind of the export
    format), shared by the bundle tests; tests that edit a bundle copy it first."""
    from tests.bundle_nets import NETS, build

    root = tmp_path_factory.mktemp("net_bundles")
    return {name: build(name, root / name)[1] for name in NETS}
