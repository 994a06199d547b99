"""The timing scripts of benchmarks/ share one option parser: a bad count is one line and exit
status 2 before anything is timed, and step_profile's batch is an option of it."""

from __future__ import annotations

import pytest
import torch


@pytest.mark.parametrize("name", ["muon_step", "conv_forms", "step_profile"])
@pytest.mark.parametrize("option", ["--threads", "--repeats"])
def test_a_count_below_one_is_one_line_and_exit_status_2(load_benchmark, name, option, capsys):
    threads = torch.get_num_threads()
    with pytest.raises(SystemExit) as stopped:
        load_benchmark(name).main([option, "0"])
    assert stopped.value.code == 2
    assert (
        capsys.readouterr().err.strip().splitlines()[-1].endswith(f"{option} must be >= 1, got 0")
    )
    assert torch.get_num_threads() == threads  # nothing applied


def test_step_profile_takes_a_batch_and_keeps_its_defaults(load_benchmark, capsys, one_thread):
    timing_options = load_benchmark("muon_step").timing_options
    args = timing_options("doc", ["--batch", "500", "--threads", "1"], repeats=4, batch=1000)
    assert (args.batch, args.repeats, args.threads) == (500, 4, 1)
    assert not hasattr(timing_options("doc", ["--threads", "1"]), "batch")
    with pytest.raises(SystemExit) as stopped:
        load_benchmark("step_profile").main(["--batch", "-5"])
    assert stopped.value.code == 2
    assert "--batch must be >= 1, got -5" in capsys.readouterr().err
