"""The lab's local server: Starlette routes on uvicorn, bound to 127.0.0.1 on a free port.

Starlette and uvicorn are a small, well-kept ASGI pair: a page, a few JSON routes and static
files need nothing more (no framework with its own front end, as Gradio would bring).
Computation runs in Starlette's thread pool, so a long landscape never blocks the page.
"""

from __future__ import annotations

import socket
import threading
import webbrowser
from typing import Any

from cnnlab.errors import CnnlabError
from cnnlab.lab.content import Lab
from cnnlab.lab.page import STATIC, render

try:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route
except ImportError as missing:  # the optional extra is not installed
    raise CnnlabError(f"cnnlab lab needs {missing.name}: pip install 'cnnlab[lab]'") from None

_SLIDERS = ("lr_scale", "momentum", "beta1", "beta2", "x", "y")
_TYPES = {".js": "text/javascript", ".css": "text/css"}


def _number(request: Request, name: str) -> float:
    try:
        return float(request.query_params[name])
    except ValueError:
        raise CnnlabError(f"{name} must be a number, got {request.query_params[name]!r}") from None


def create_app(lab: Lab) -> Starlette:
    """The ASGI app: the page, its static files and one JSON route per view."""
    page = render(lab.page_data() | {"mode": "served"}, inline=False)

    def answer(compute) -> Response:
        try:
            return JSONResponse(compute())
        except CnnlabError as error:
            return JSONResponse({"error": str(error)}, status_code=400)

    def home(request: Request) -> Response:
        return HTMLResponse(page)

    def static(request: Request) -> Response:
        name = request.path_params["name"]
        resource = STATIC / name
        if "/" in name or not resource.is_file():
            return Response("not found", status_code=404)
        suffix = name[name.rfind(".") :]
        return Response(resource.read_bytes(), media_type=_TYPES.get(suffix, "text/plain"))

    def features(request: Request) -> Response:
        return answer(lambda: lab.features(request.query_params.get("layer", "")))

    def race(request: Request) -> Response:
        params = request.query_params

        def compute() -> dict[str, Any]:
            values = {name: _number(request, name) for name in _SLIDERS if name in params}
            return lab.race(params.get("surface", ""), params.get("optimizer", ""), **values)

        return answer(compute)

    def saliency(request: Request) -> Response:
        target = request.query_params.get("target")
        return answer(lambda: lab.saliency(None if target in (None, "", "top") else int(target)))

    def landscape(request: Request) -> Response:
        return answer(lab.landscape)

    return Starlette(
        routes=[
            Route("/", home),
            Route("/static/{name}", static),
            Route("/api/features", features),
            Route("/api/race", race),
            Route("/api/saliency", saliency),
            Route("/api/landscape", landscape),
        ]
    )


class LabServer:
    """uvicorn on a socket bound to 127.0.0.1 and a free port (``port=0``)."""

    def __init__(self, lab: Lab, port: int = 0) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind(("127.0.0.1", port))
            self.socket.listen()  # from now on a browser waits in the queue, never refused
        except OSError as error:
            raise CnnlabError(
                f"cannot listen on 127.0.0.1:{port} ({error}); try --port 0"
            ) from None
        config = uvicorn.Config(create_app(lab), log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}/"

    def run(self, open_browser: bool = False) -> None:
        """Serve until Ctrl-C (uvicorn stops cleanly on SIGINT)."""
        if open_browser:
            threading.Timer(0.5, webbrowser.open, args=(self.url,)).start()
        self.server.run(sockets=[self.socket])

    def start_in_thread(self) -> threading.Thread:
        """Serve from a background thread (tests); ``stop`` ends it."""
        thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]})
        thread.daemon = True
        thread.start()
        while not self.server.started and thread.is_alive():
            threading.Event().wait(0.02)
        return thread

    def stop(self) -> None:
        self.server.should_exit = True
