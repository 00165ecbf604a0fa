"""`make airflow AIRFLOW_ARGS="--sandbox-divisions N"` reaches the sandbox as N divisions (#21)."""

from __future__ import annotations

import pytest

from include.airflow_stack import sandbox_argv
from include.airflow_stack.__main__ import _options, _parser
from include.exact_sandbox.__main__ import config_from


def test_sandbox_divisions_reach_the_sandbox_as_its_divisions(tmp_path):
    options = _options(_parser().parse_args(["--sandbox-divisions", "3", "--state-dir", str(tmp_path)]))
    argv = sandbox_argv(options)
    assert argv[1:3] == ["-m", "include.exact_sandbox"]
    config, args = config_from(argv[3:])  # what the sandbox makes of its command line
    assert (config.companies, config.size, args.state_file) == (3, 5000, str(tmp_path / "sandbox.pickle"))
    default, _ = config_from(sandbox_argv(_options(_parser().parse_args(["--state-dir", str(tmp_path)])))[3:])
    assert default.companies == 1 and default.divisions == []


@pytest.mark.parametrize("bad", ["0", "-2", "three"])
def test_a_bad_number_of_divisions_is_refused_with_the_reason(bad, capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["--sandbox-divisions", bad])
    assert "a whole number of at least 1" in capsys.readouterr().err
