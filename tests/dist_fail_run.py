"""``hwsnn`` under torchrun with a failure injected on one rank (for tests/test_distributed_cli.py):

    torchrun --standalone --nproc-per-node 2 tests/dist_fail_run.py {train|export} RANK -- run ARGS...

``train``: that rank's float training raises; ``export``: that rank's export raises (rank 0 is the
only one that exports). Everything else is the real command line.
"""

import os
import sys


def main() -> int:
    where, rank, sep, *argv = sys.argv[1:]
    assert sep == "--" and where in ("train", "export"), sys.argv
    if int(os.environ.get("RANK", "0")) == int(rank):
        import hwsnn.demo
        import quant.job

        def failing(*args, **kwargs):
            raise ValueError(f"injected failure in {where} on rank {rank}")

        if where == "train":
            hwsnn.demo.train = failing
        else:
            quant.job.export = failing
    from hwsnn import cli

    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
