"""Issue 7, item 1: fuzzing the reader and the session with mutated model files.

* ``test_fuzz_campaign``: the CI campaign, 20,000 mutants of the seed models (tests/fuzz/seeds.py) in two
  worker processes watched for hangs (5 s a case) and crashes, peak memory measured per case with
  tracemalloc. It prints its figures; every case must end in tinyrt's own errors or a result.
* ``test_property_mutants_only_raise_tinyrt_errors``: the same property through hypothesis (its own
  choice of seeds, mutations and spliced bytes), in this process.
* A long campaign, or another stream of mutants: ``python -m tests.fuzz --minutes 30 --seed 1``
  (see tests/fuzz/__main__.py); ``python tests/fuzz/atheris_fuzz.py`` runs atheris when installed.
"""
import os
import random
import sys
import tracemalloc

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import tinyrt

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fuzz import campaign  # noqa: E402
from fuzz.harness import run_case, zero_feed  # noqa: E402
from fuzz.mutators import Mutator, mutate, parse, serialize  # noqa: E402
from fuzz.seeds import seed_bytes, seed_models  # noqa: E402

CI_CASES = 20000


@pytest.mark.parametrize("name", sorted(seed_models()))
def test_seed_models_run_and_match_onnxruntime(name):
    """Every seed is a valid model that tinyrt and onnxruntime agree on (mutants start from good files)."""
    data = seed_bytes()[name]
    sess = tinyrt.InferenceSession(data)
    feeds = {a.name: zero_feed(a.spec) + 0.5 for a in sess.get_inputs()}
    ours = sess.run(None, feeds)
    theirs = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feeds)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_wire_round_trip():
    """The mutators' schema-less parser writes back exactly what it read."""
    for data in seed_bytes().values():
        assert serialize(parse(data)) == data


def test_mutants_are_deterministic():
    a, b = Mutator(seed_bytes(), 0), Mutator(seed_bytes(), 0)
    assert [a.case(i) for i in range(50)] == [b.case(i) for i in range(50)]
    assert len({a.case(i)[1] for i in range(200)}) > 190


@pytest.mark.slow  # 20,000 mutants: about a minute on an idle 2-core machine, 13 minutes on a loaded one
def test_fuzz_campaign(capsys):
    result = campaign.run(cases=CI_CASES, workers=2, base_seed=0, timeout=5.0, slow=5.0)
    with capsys.disabled():
        print("\n" + result.summary())
    assert result.cases >= CI_CASES
    assert result.findings == [], result.summary()
    assert result.max_peak[0] < campaign.PEAK_LIMIT
    assert sum(n for o, n in result.outcomes.items() if o == "ran") > 1000  # mutants do reach the executor


@pytest.mark.slow  # a few worker starts (imports and warm-up): about half a minute
def test_a_case_stalled_by_a_loaded_machine_is_run_again_alone_not_called_a_hang():
    """A case seen running past the timeout (here made to sleep 1.5 s against 0.5 s) runs once more, alone,
    with time to finish: it finishes, so it counts as it ran, not as a hang, and the worker goes on from the
    case after it (none lost)."""
    result = campaign.run(cases=3, start=10575, workers=1, base_seed=0, timeout=0.5, slow=5.0, confirm=40,
                          stall=(10576, 1.5))
    assert result.findings == [], result.summary()
    assert (result.cases, result.stalls) == (3, 1), result.summary()


@pytest.mark.slow
def test_a_case_that_stalls_again_alone_is_a_hang():
    result = campaign.run(cases=3, start=10575, workers=1, base_seed=0, timeout=0.5, slow=5.0, confirm=4,
                          stall=(10576, 30))
    assert [(kind, case) for kind, case, _, _ in result.findings] == [("hang", 10576)], result.summary()
    assert result.cases == 3 and result.stalls == 0, result.summary()


_SEEDS = seed_bytes()
_TREES = {name: parse(data) for name, data in _SEEDS.items()}


@pytest.mark.slow  # 400 mutants in process: 14 s on a loaded machine
@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(name=st.sampled_from(sorted(_SEEDS)), rng=st.randoms(use_true_random=False),
       splice=st.binary(max_size=48), where=st.floats(0, 1))
def test_property_mutants_only_raise_tinyrt_errors(name, rng, splice, where):
    data = mutate(rng, _SEEDS[name], _TREES[name], list(_TREES.values()))
    if splice:
        at = int(where * len(data))
        data = data[:at] + splice + data[at:]
    tracemalloc.start()
    try:
        run_case(data)  # anything but a TinyrtError propagates and fails the test
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < campaign.memory_bound(len(data))


def test_random_files_of_every_size():
    """Pure noise, from empty to 4 KB: refused with ModelError (or, very rarely, something that loads)."""
    rng = random.Random(7)
    for size in [0, 1, 2, 3, 5, 8, 16, 64, 256, 1024, 4096] * 20:
        data = bytes(rng.getrandbits(8) for _ in range(size))
        try:
            run_case(data)
        except tinyrt.TinyrtError:
            pass


def test_the_mutant_that_named_a_graph_value_empty():
    """Mutant 7542 of the CI campaign gives a graph value the name "" (ONNX's "absent"): the compiled
    program had no variable for it (KeyError). Such a graph runs step by step."""
    name, data = Mutator(seed_bytes(), 0).case(7542)
    assert run_case(data) == "ran"
