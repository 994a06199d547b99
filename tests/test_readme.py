"""README.md stays true: its quickstart is the one CI runs, and it covers every command."""

import argparse
import re
from pathlib import Path

from cnnlab.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"


def command_names() -> set[str]:
    (subparsers,) = (
        action
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    return set(subparsers.choices)


def test_quickstart_is_install_main_job_tests():
    text = README.read_text()
    quickstart = text.split("## Quickstart", 1)[1].split("```console", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in quickstart.strip().splitlines()]
    assert commands == ['pip install -e ".[dev]"', "cnnlab train lenet5", "pytest -q"]
    ci = (README.parent / ".ci" / "run").read_text()
    assert 'pip install --quiet -e ".[dev]"' in ci and "\npytest -q" in ci


def test_every_command_is_in_the_table_and_the_tour():
    text = README.read_text()
    table = set(re.findall(r"^\| `cnnlab ([a-z-]+)", text, flags=re.MULTILINE))
    shown = set(re.findall(r"^\$ cnnlab ([a-z-]+)", text, flags=re.MULTILINE))
    assert table == command_names()
    assert shown == command_names(), f"commands without real output: {command_names() - shown}"


def test_every_picture_the_readme_shows_is_committed():
    text = README.read_text()
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert pictures, "the tour shows pictures"
    for picture in pictures:
        assert (README.parent / picture).stat().st_size > 10_000, picture
