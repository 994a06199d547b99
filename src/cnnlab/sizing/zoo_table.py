"""The model zoo as one table: parameters and MACs of every registered model, grouped by family.

Each model is built and sized on the meta device, so the whole zoo takes seconds and no memory;
nothing is cached on disk, so the table always matches the code.
"""

from __future__ import annotations

import warnings

from rich.table import Table
from rich.text import Text

from cnnlab.errors import CnnlabError, unknown_name
from cnnlab.models import list_entries, list_models
from cnnlab.sizing.arithmetic import GeometryWarning
from cnnlab.sizing.summary import summary
from cnnlab.sizing.units import dims, si


def models_table(pattern: str | None = None) -> Table:
    """A rich table of the registered models matching ``pattern`` (shell wildcards).

    Raises:
        UnknownNameError: ``pattern`` matches no model (nearest names suggested).
    """
    entries = list_entries(pattern)
    if pattern and not entries:
        raise unknown_name("model pattern", pattern, list_models(), "run `cnnlab models`")
    table = Table(title="cnnlab models", caption="MACs at the default input size; FLOPs = 2 × MACs")
    for title, justify in [
        ("Family", "left"),
        ("Model", "left"),
        ("Parameters", "right"),
        ("MACs", "right"),
        ("Input", "right"),
        ("Paper", "left"),
    ]:
        table.add_column(title, justify=justify)
    for index, entry in enumerate(entries):
        first_of_family = index == 0 or entries[index - 1].family != entry.family
        last_of_family = index + 1 == len(entries) or entries[index + 1].family != entry.family
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", GeometryWarning)
                sized = summary(entry.name)
            numbers = [f"{sized.total_params:,}", si(sized.macs), dims(sized.input_size)]
        except CnnlabError as error:
            numbers = ["", Text(f"cannot size: {error}", style="red"), ""]
        table.add_row(
            entry.family if first_of_family else "",
            entry.name,
            *numbers,
            Text(entry.paper),
            end_section=last_of_family,
        )
    return table
