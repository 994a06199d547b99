"""The command line as a user meets it: help, version, usage mistakes in one line with status 2."""

import subprocess
import sys
from pathlib import Path

from cnnlab import __version__


def test_installed_entry_point_prints_the_version():
    """The one test that starts the installed ``cnnlab`` script (pyproject's entry point)."""
    script = Path(sys.executable).with_name("cnnlab")
    result = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and __version__ in result.stdout


def test_help_lists_commands(cnnlab):
    result = cnnlab("--help")
    assert result.returncode == 0
    assert "models" in result.stdout and "summary" in result.stdout


def test_version(cnnlab):
    result = cnnlab("--version")
    assert result.returncode == 0 and f"cnnlab {__version__}" in result.stdout


def test_unknown_command_is_one_line_exit_2(cnnlab):
    result = cnnlab("trian")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_unknown_model_is_one_line_with_suggestion(cnnlab):
    result = cnnlab("summary", "vgg16bn")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "vgg16_bn" in lines[0]
    assert "Traceback" not in result.stderr


def test_shared_options_have_one_default_on_every_command():
    """--device is auto (cuda when available) and --seed 0 wherever a command takes them;
    resume alone keeps the device its run recorded unless told otherwise."""
    from cnnlab.cli import _parsers

    _, commands = _parsers()
    devices = {name: p.get_default("device") for name, p in commands.items()}
    seeds = {name: p.get_default("seed") for name, p in commands.items()}
    takes = {
        name: {o for a in p._actions for o in a.option_strings} for name, p in commands.items()
    }
    assert {devices[n] for n in commands if "--device" in takes[n] and n != "resume"} == {"auto"}
    assert devices["resume"] is None
    assert {seeds[n] for n in commands if "--seed" in takes[n]} == {0}
    assert {"train", "evaluate", "landscape", "gradflow", "lr-find", "predict"} <= {
        n for n in commands if "--device" in takes[n]
    }
