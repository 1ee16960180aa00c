"""The default suite's share of the fuzz harness (`make fuzz` runs 10,000 inputs per reader).

Every mutated input through every public reader (and the plugins' inspect commands) must give a
result or a MedfaceError: no other exception, no hang past the per-input limit, no crash of the
worker process, no memory blow-up. Deterministic: the same seeds and mutations on every run.
"""

from __future__ import annotations

import pytest

from tests.fuzzing import harness
from tests.fuzzing.seeds import write_seeds

READER_INPUTS = 80
COMMAND_INPUTS = 12


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return write_seeds(tmp_path_factory.mktemp("fuzz-seeds"))


def test_every_seed_reads(seeds):
    """The harness mutates valid files: each seed itself gives a result (so refusals mean something)."""
    for target in harness.TARGETS:
        for name in target.seeds:
            target.call(str(seeds[name]))


@pytest.mark.parametrize("target", harness.TARGETS, ids=[t.name for t in harness.TARGETS])
def test_fuzzed_inputs_give_a_result_or_a_medface_error(target, seeds, tmp_path):
    count = COMMAND_INPUTS if target.inputs_scale < 1 else READER_INPUTS
    report = harness.fuzz_target(target, seeds, tmp_path, count, timeout_s=30.0)
    assert report.inputs >= count
    assert report.failed == 0, "\n".join(f"{f['outcome']}: {f['case']}: {f['detail']}" for f in report.failures)
    # the mutations exercise both paths: some inputs still read, others are refused
    assert report.counts["medface"] > 0


def test_the_harness_catches_a_crash_a_hang_and_a_stray_exception(tmp_path):
    """The harness itself can fail: a reader that segfaults, sleeps or raises TypeError is reported."""
    import ctypes
    import time

    def bad_reader(path):
        text = open(path, encoding="utf-8").read()
        if "crash" in text:
            ctypes.string_at(0)
        if "hang" in text:
            time.sleep(60)
        if "type" in text:
            raise TypeError("stray")

    fake = {}
    for word in ("crash", "hang", "type"):
        fake[word] = tmp_path / f"{word}.txt"
        fake[word].write_text(word, encoding="utf-8")
    worker = harness.Worker(bad_reader)
    try:
        outcomes = {}
        for word, path in fake.items():
            outcomes[word] = worker.ask(path, 2.0)[0]
            if worker.pid == 0 or outcomes[word] == "hang":
                worker.close()
                worker = harness.Worker(bad_reader)
    finally:
        worker.close()
    assert outcomes == {"crash": "crash", "hang": "hang", "type": "other"}
