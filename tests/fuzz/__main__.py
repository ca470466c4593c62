"""The long fuzz campaign, from the command line (run from the repository root):

    python -m tests.fuzz --minutes 30              # as many cases as fit in 30 minutes, 2 workers
    python -m tests.fuzz --cases 200000 --workers 4 --seed 7
    python -m tests.fuzz --replay 12345            # one case in this process, with its traceback
    python -m tests.fuzz --save 12345 case.onnx    # write a case's bytes to a file
    python -m tests.fuzz --semantic --minutes 30   # valid graphs with hostile attributes (semantic.py)

A different ``--seed`` gives a different stream of mutants (the CI test uses seed 0, cases 0..19999).
The exit status is 1 when anything was found (see tests/fuzz/campaign.py for the kinds of findings).
"""
import argparse
import sys

from . import campaign


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, help="run for this long (overrides --cases)")
    p.add_argument("--cases", type=int, default=20000)
    p.add_argument("--start", type=int, default=0, help="first case number")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0, help="base seed of the mutant stream")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds before a case counts as a hang")
    p.add_argument("--kernels", choices=["numba", "numpy"], help="force one kernel path")
    p.add_argument("--semantic", action="store_true",
                   help="the semantic generator (valid graphs, hostile attributes and shapes) instead of mutants")
    p.add_argument("--replay", type=int, metavar="CASE")
    p.add_argument("--save", nargs=2, metavar=("CASE", "PATH"))
    a = p.parse_args(argv)
    generator = "semantic" if a.semantic else "mutants"
    if a.replay is not None:
        campaign.replay(a.replay, a.seed, a.kernels, generator)
        return 0
    if a.save:
        print(campaign.save(int(a.save[0]), a.save[1], a.seed, generator))
        return 0
    result = campaign.run(cases=a.cases, start=a.start, workers=a.workers, base_seed=a.seed,
                          timeout=a.timeout, slow=a.timeout, minutes=a.minutes, kernels=a.kernels,
                          progress=lambda text: print(text, file=sys.stderr, flush=True), generator=generator)
    print(result.summary())
    return 1 if result.findings else 0


if __name__ == "__main__":
    sys.exit(main())
