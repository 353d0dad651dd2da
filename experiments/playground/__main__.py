"""The jaxnet playground: tinker with a network in the browser and watch it learn.

    python -m experiments.playground                # http://127.0.0.1:8765/
    python -m experiments.playground --port 0 --open  # a free port, open a tab

It serves one page on 127.0.0.1 (``--host`` to change; the page has no
login, so only bind another address on a network you trust). The page trains
with jaxnet's own code: the hand-written backward pass, the driver's compiled
chunks, the library's tables of activations, outputs, initializations and
optimizers (docs/playground.md). Ctrl-C stops the server within a second.
"""

import argparse
import socket
import threading
import webbrowser

from experiments import common
from experiments.cli import OneLineParser

DEFAULT_PORT = 8765
GRACE_SECONDS = 0.3  # open connections (event streams) get this long on Ctrl-C


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m experiments.playground",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port (0: any free one)"
    )
    parser.add_argument("--open", action="store_true", help="open the page")
    return parser


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or a one-line error naming the fix."""
    if not 0 <= port <= 65535:
        raise ValueError(f"--port must be 0..65535; got {port}")
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(info[0], socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(info[4])
    except OSError as e:
        raise ValueError(
            f"cannot listen on {host}:{port} ({e.strerror or e}); choose another "
            "port with --port (0 picks a free one)"
        ) from None
    sock.listen(64)
    return sock


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    sock = bind(args.host, args.port)
    import uvicorn

    from experiments.playground.app import create_app

    app = create_app()

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame):  # end the event streams and runs now
            app.state.closing.set()
            app.state.sessions.close()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app, log_level="warning", timeout_graceful_shutdown=GRACE_SECONDS
    )
    server = Server(config)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    print(f"jaxnet playground at {url} (Ctrl-C stops it)", flush=True)
    if args.open:
        threading.Timer(0.5, webbrowser.open, (url,)).start()
    code = 0
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        code = 130
    if server.should_exit and code == 0:
        code = 130  # stopped by Ctrl-C / SIGTERM
    print("playground stopped", flush=True)
    common.exit_at_once(code)  # no teardown wait on a compiling thread
    return {"exit_code": code}


if __name__ == "__main__":
    common.run_cli(main)
