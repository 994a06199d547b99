"""The command line as a user meets it: help, version, usage mistakes in one line with status 2."""

import subprocess
import sys

import cnnlab


def run_cnnlab(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cnnlab.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def test_help_lists_commands():
    result = run_cnnlab("--help")
    assert result.returncode == 0
    assert "models" in result.stdout and "summary" in result.stdout


def test_version():
    result = run_cnnlab("--version")
    assert result.returncode == 0 and cnnlab.__version__ in result.stdout


def test_unknown_command_is_one_line_exit_2():
    result = run_cnnlab("trian")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_unknown_model_is_one_line_with_suggestion():
    result = run_cnnlab("summary", "vgg16bn")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "vgg16_bn" in lines[0]
    assert "Traceback" not in result.stderr
