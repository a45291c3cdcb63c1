"""A web process: uvicorn on console.asgi_static:application (pages, static files, websockets).

    python -m console.webserver --host 127.0.0.1 --port 8000   binds the port itself
    python -m console.webserver --fd 3                         serves on a listening socket it inherited
    ... --proxy-headers                                        behind the reverse proxy (deploy/)

`manage.py serve` starts it (with --fd when several web processes share the port); deploy/'s
console-web@.service runs it behind the proxy. uvicorn rather than daphne: at 500 pages x 5
updates/s it spends less CPU per websocket frame and its send reaches the socket at once, where
twisted writes every page's frame of an update in the loop's next turn (bench/RESULTS.md,
"uvicorn instead of daphne").

Fixed here rather than left to uvicorn's defaults:
- the socket from --fd is adopted as what it is: uvicorn's own --fd takes it as AF_UNIX, and
  asyncio then never sets TCP_NODELAY on the connections accepted from it;
- no permessage-deflate: compressing is a zlib stream per page, paid for each page's copy of every
  update (daphne never compressed either; browsers work without it);
- no lifespan (Django's ASGI application has none), and open connections get 5 s to end on SIGTERM;
- no `Server` header: what runs the console is nobody's business outside.
"""

from __future__ import annotations

import argparse
import socket

APPLICATION = "console.asgi_static:application"
STOP_TIMEOUT_S = 5


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m console.webserver", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument("--fd", type=int, help="serve on this inherited listening socket instead of binding")
    parser.add_argument(
        "--proxy-headers",
        action="store_true",
        help="trust X-Forwarded-For/-Proto from the addresses in FORWARDED_ALLOW_IPS (default 127.0.0.1)",
    )
    return parser.parse_args(argv)


def main(argv=None) -> None:
    import uvicorn

    args = parse_args(argv)
    config = uvicorn.Config(
        APPLICATION,
        host=args.host,
        port=args.port,
        http="h11",
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        lifespan="off",
        proxy_headers=args.proxy_headers,
        timeout_graceful_shutdown=STOP_TIMEOUT_S,
        server_header=False,
    )
    sockets = None if args.fd is None else [socket.socket(fileno=args.fd)]
    uvicorn.Server(config).run(sockets=sockets)


if __name__ == "__main__":
    main()
