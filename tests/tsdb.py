"""Real remote-write receivers for tests: VictoriaMetrics and Prometheus (`--web.enable-remote-write-receiver`),
each on a free 127.0.0.1 port with its own data directory, stoppable and restartable on the same port; and their
raw samples read back (VictoriaMetrics `/api/v1/export`, Prometheus a range-vector instant query).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_oracle import free_port

Labels = tuple[tuple[str, str], ...]
Samples = dict[Labels, dict[int, float]]  # series (with __name__) → timestamp ms → value


class Receiver:
    binary = ""
    write_path = "/api/v1/write"

    def __init__(self, work_dir: Path, enable_receiver: bool = True):
        self.work_dir = work_dir
        self.data_dir = work_dir / "data"
        self.enable_receiver = enable_receiver
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @classmethod
    def available(cls) -> bool:
        return shutil.which(cls.binary) is not None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def write_url(self) -> str:
        return self.url + self.write_path

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 60.0) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        log = (self.work_dir / f"{self.binary}.log").open("ab")
        self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        cwd=self.work_dir)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.binary} exited with {self.process.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.binary} not ready within {timeout:g} s: {self.log_tail()}")

    ready_path = "/-/ready"

    def stop(self) -> None:
        """SIGTERM: what the server acknowledged is on disk (a SIGKILL would lose its last second of writes)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        self.process = None

    def log_tail(self) -> str:
        path = self.work_dir / f"{self.binary}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-20:]) if path.exists() else ""

    def get(self, path: str, params: dict[str, str] | None = None) -> bytes:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(self.url + path + query, timeout=60) as response:
            return response.read()

    def __enter__(self) -> Receiver:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class VictoriaMetrics(Receiver):
    binary = "victoria-metrics"
    ready_path = "/health"

    def command(self) -> list[str]:
        return [self.binary, f"-storageDataPath={self.data_dir}", f"-httpListenAddr=127.0.0.1:{self.port}",
                "-retentionPeriod=100y", "-search.latencyOffset=0s", "-loggerLevel=ERROR"]

    def samples(self, match: str) -> Samples:
        """Every raw sample of the series `match` selects."""
        self.get("/internal/force_flush")  # what was written becomes searchable now, not within a second or so
        out: Samples = {}
        for line in self.get("/api/v1/export", {"match[]": match, "start": "0"}).splitlines():
            series = json.loads(line)
            key = tuple(sorted(series["metric"].items()))
            points = out.setdefault(key, {})
            points.update(zip(series["timestamps"], (float(v) for v in series["values"])))
        return out


class Prometheus(Receiver):
    binary = "prometheus"

    def command(self) -> list[str]:
        config = self.work_dir / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 1m\nscrape_configs: []\n")
        flags = ["--web.enable-remote-write-receiver"] if self.enable_receiver else []
        return [self.binary, f"--config.file={config}", f"--storage.tsdb.path={self.data_dir}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn", *flags]

    def samples(self, match: str) -> Samples:
        """Every raw sample of the series `match` selects (a range vector over the last hour)."""
        body = json.loads(self.get("/api/v1/query", {"query": f"{match}[1h]", "time": f"{time.time() + 60:.3f}"}))
        out: Samples = {}
        for series in body["data"]["result"]:
            key = tuple(sorted(series["metric"].items()))
            out[key] = {round(float(t) * 1000): float(v) for t, v in series["values"]}
        return out


def by_name(samples: Samples) -> dict[str, dict[Labels, dict[int, float]]]:
    """Samples grouped by metric name, each series' labels without `__name__`."""
    out: dict[str, dict[Labels, dict[int, float]]] = {}
    for labels, points in samples.items():
        name = dict(labels)["__name__"]
        out.setdefault(name, {})[tuple(kv for kv in labels if kv[0] != "__name__")] = points
    return out


def wait_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())
