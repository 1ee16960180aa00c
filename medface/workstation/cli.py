"""``medface app [--data DIR] [--port N] [--host 127.0.0.1]``: start the workstation, print its URL.

It listens on this computer only (127.0.0.1) unless ``--host`` names another address *and*
``--allow-remote`` is given: the page shows patient data to whoever reaches the port.
"""

from __future__ import annotations

import ipaddress
import socket
import sys

from ..errors import InputError, ParameterError

ABOUT = "the workstation: a browser app on 3D Slicer's core with every plugin's commands (docs/workstation.md)"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def add_parser(sub, formatter) -> None:
    p = sub.add_parser("app", help=ABOUT, description=ABOUT, formatter_class=formatter)
    p.add_argument("--data", default=".", metavar="DIR",
                   help="the data folder: the app reads and writes only inside it (default: this folder)")
    p.add_argument("--port", type=int, default=8080, metavar="N", help="port (default: 8080; 0: a free port)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this computer)")
    p.add_argument("--allow-remote", action="store_true",
                   help="needed with a --host other than this computer: anyone who reaches it sees the data")
    p.add_argument("--max-upload-mb", type=float, default=None, metavar="MB",
                   help="largest file the page may upload (default: 512)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.set_defaults(_handler=run)


def check_host(host: str, allow_remote: bool) -> bool:
    """True when ``host`` is this computer only; refuses another address without ``allow_remote``."""
    if host in LOCAL_HOSTS:
        return True
    try:
        if ipaddress.ip_address(host).is_loopback:
            return True
    except ValueError:
        pass
    if not allow_remote:
        raise ParameterError(f"--host {host} would let other computers reach the app and its patient data",
                             parameter="host", hint="add --allow-remote if that is what you want")
    return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def run(args) -> int:
    from .files import DEFAULT_UPLOAD_LIMIT_MB, DataFolder

    local = check_host(args.host, args.allow_remote)
    if not 0 <= args.port <= 65535:
        raise ParameterError(f"--port must be 0-65535, got {args.port}", parameter="port")
    data = DataFolder(args.data, upload_limit_mb=args.max_upload_mb or DEFAULT_UPLOAD_LIMIT_MB)
    port = args.port or free_port(args.host)
    try:
        from .app import Workstation
    except ImportError as exc:
        raise InputError(f"the workstation needs its extra: pip install 'medface[workstation]' ({exc})") from exc
    app = Workstation(data)
    if not local:
        print(f"medface app: WARNING: listening on {args.host}: anyone who reaches port {port} sees the data "
              f"folder and its patient data", file=sys.stderr)
    shown = "127.0.0.1" if args.host == "localhost" else args.host
    print(f"medface workstation: http://{'[' + shown + ']' if ':' in shown else shown}:{port}/", flush=True)
    print(f"data folder: {data.root.name}/ (nothing outside it is shown); Ctrl-C stops", flush=True)
    app.start(port=port, host=args.host, open_browser=args.open)
    return 0
