"""A real Hub-protocol server on loopback for tests: olah serving local git repositories, offline.

What olah needs and its quirks are in ../shared/research/olah_local_hub.md: a `models/` or `datasets/` level,
a git repository per repo with a `main` branch, `offline = true`, and two small per-branch files
(`meta_head.json`, `resolved_commit.json`) so that `model_info` and missing-file probes answer as the Hub does.
olah runs from its own environment (`.venv-olah`, made by scripts/setup_hub_server.sh): its fastapi-utils
needs psutil < 6, which the pinned set's accelerate does not allow. The server is started on a free port,
bound to 127.0.0.1, and stopped by its own PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

OLAH_CLI = Path(__file__).resolve().parent.parent / ".venv-olah" / "bin" / "olah-cli"
GIT_ENV = {"GIT_AUTHOR_NAME": "lst-tests", "GIT_AUTHOR_EMAIL": "tests@localhost", "GIT_COMMITTER_NAME": "lst-tests",
           "GIT_COMMITTER_EMAIL": "tests@localhost", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalHub:
    def __init__(self, root: Path, port: int):
        self.root, self.port = root, port
        self.endpoint = f"http://127.0.0.1:{port}"

    def publish(self, repo_type: str, repo_id: str, folder: str | os.PathLike) -> str:
        """Commit `folder` as `repo_id` on `main` and refresh olah's per-branch files; returns the commit sha."""
        repo = self.root / "mirrors" / f"{repo_type}s" / repo_id
        shutil.copytree(folder, repo, dirs_exist_ok=True)
        env = {**os.environ, **GIT_ENV}
        if not (repo / ".git").exists():
            subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=env)
        subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True, env=env)
        subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", "publish"], check=True, env=env)
        sha = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, env=env, capture_output=True,
                             text=True).stdout.strip()
        stubs = self.root / "repos" / "api" / f"{repo_type}s" / repo_id / "revision" / "main"
        stubs.mkdir(parents=True, exist_ok=True)
        (stubs / "meta_head.json").write_text(json.dumps(
            {"sha": sha, "lastModified": datetime.now(timezone.utc).isoformat()}))
        (stubs / "resolved_commit.json").write_text(json.dumps(
            {"status_code": 200, "headers": {}, "content": sha.encode().hex()}))
        return sha


@contextlib.contextmanager
def local_hub(root: str | os.PathLike, startup_seconds: float = 60.0):
    """Start olah on a free loopback port serving `root`; yields a `LocalHub`; stops it on exit."""
    root = Path(root)
    for folder in ("mirrors/models", "mirrors/datasets", "repos", "logs"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    port = _free_port()
    (root / "olah.toml").write_text(
        f'[basic]\nhost = "127.0.0.1"\nport = {port}\nrepos-path = "{root / "repos"}"\n'
        f'mirrors-path = ["{root / "mirrors"}"]\nmirror-netloc = "127.0.0.1:{port}"\n'
        f'mirror-lfs-netloc = "127.0.0.1:{port}"\n[accessibility]\noffline = true\n')
    log = open(root / "logs" / "server.log", "w")
    server = subprocess.Popen([str(OLAH_CLI), "-c", str(root / "olah.toml"), "--log-path", str(root / "logs")],
                              stdout=log, stderr=subprocess.STDOUT, cwd=root)
    hub = LocalHub(root, port)
    try:
        deadline = time.time() + startup_seconds
        while True:
            try:
                urllib.request.urlopen(f"{hub.endpoint}/api/models/none/none/revision/main", timeout=2)
            except urllib.error.HTTPError:
                break  # the server answers (a 4xx for a repo that does not exist)
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"olah did not start; its log:\n{(root / 'logs' / 'server.log').read_text()}")
                time.sleep(0.2)
            else:
                break
        yield hub
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
