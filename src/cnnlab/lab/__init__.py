"""``cnnlab lab``: the lectures as an interactive page, on any model of the zoo or a checkpoint.

Five views (convolution step by step, network explorer, optimizer race, loss landscape in 3-D,
saliency) drawn from what cnnlab computes. ``serve`` runs the page on a local server (needs the
``lab`` extra: Starlette and uvicorn); ``export`` writes it as one self-contained offline file.
"""

from __future__ import annotations

from cnnlab.lab.content import Lab
from cnnlab.lab.page import export_page

__all__ = ["Lab", "export_page", "serve"]


def serve(lab: Lab, *, port: int = 0, open_browser: bool = True, announce=print) -> None:
    """Serve ``lab`` on 127.0.0.1 until Ctrl-C; ``announce`` gets the URL line."""
    from cnnlab.lab.server import LabServer  # needs the optional extra

    server = LabServer(lab, port)
    announce(f"cnnlab lab at {server.url} (Ctrl-C stops it)")
    try:
        server.run(open_browser=open_browser)
    except KeyboardInterrupt:  # uvicorn shuts down, then passes Ctrl-C on
        announce("lab stopped")
