"""A private PulseAudio server with a virtual microphone, and synthesized speech, for audio tests.

The server is isolated from any desktop audio: its own runtime/state/home folders, its own unix
socket (anonymous auth, so clients need no cookie), started with ``-n`` (no default.pa: no
hardware modules) and a null sink whose monitor feeds a virtual source. ``PULSE_SERVER`` points
clients (pactl, paplay, and PortAudio's ALSA ``pulse`` device in this process) at it. This works
as root (CI runs ``make test`` as root; PulseAudio only warns) and as a normal user.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

SINK, SOURCE = "vsink", "vmic"


class PulseServer:
    """One private PulseAudio daemon; :meth:`stop` ends it (by its pid) and removes its files."""

    def __init__(self) -> None:
        binary = shutil.which("pulseaudio")
        if binary is None:
            pytest.skip("pulseaudio is not installed (apt-get install pulseaudio pulseaudio-utils)")
        for tool in ("pactl", "paplay"):
            if shutil.which(tool) is None:
                pytest.fail(f"{tool} is missing; install pulseaudio-utils")
        # short path: unix socket paths are limited to 107 bytes
        self.root = Path(tempfile.mkdtemp(prefix="sq-pulse-"))
        self.root.chmod(0o700)
        self.socket = self.root / "native"
        self.log = self.root / "pulse.log"
        self.server = f"unix:{self.socket}"
        self.pid: int | None = None
        dirs = {name: self.root / name for name in ("home", "run", "state", "config")}
        for folder in dirs.values():
            folder.mkdir(mode=0o700)
        daemon_env = {
            **os.environ,
            "HOME": str(dirs["home"]),
            "XDG_RUNTIME_DIR": str(dirs["run"]),
            "XDG_CONFIG_HOME": str(dirs["config"]),
            "PULSE_RUNTIME_PATH": str(dirs["run"]),
            "PULSE_STATE_PATH": str(dirs["state"]),
        }
        daemon_env.pop("PULSE_SERVER", None)
        daemon_env.pop("DBUS_SESSION_BUS_ADDRESS", None)
        command = [
            binary,
            "-D",
            "--exit-idle-time=-1",
            "-n",
            "--use-pid-file=yes",
            "--disable-shm=yes",  # containers may lack a usable /dev/shm
            "--realtime=no",
            "--high-priority=no",
            f"--log-target=file:{self.log}",
            f"--load=module-native-protocol-unix auth-anonymous=1 socket={self.socket}",
            f"--load=module-null-sink sink_name={SINK}",
            f"--load=module-virtual-source source_name={SOURCE} master={SINK}.monitor",
        ]
        done = subprocess.run(command, env=daemon_env, capture_output=True, text=True, timeout=30)
        pid_file = dirs["run"] / "pid"
        if done.returncode != 0 or not pid_file.is_file():
            detail = (done.stderr or "").strip() or self._log_text()
            self._cleanup()
            pytest.fail(f"pulseaudio did not start (exit {done.returncode}): {detail}")
        self.pid = int(pid_file.read_text().split()[0])
        self.env = {**os.environ, "PULSE_SERVER": self.server}
        self.pactl("set-default-sink", SINK)
        self.pactl("set-default-source", SOURCE)

    def _log_text(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.is_file() else ""

    def pactl(self, *args: str) -> str:
        done = subprocess.run(
            ["pactl", *args], env=self.env, capture_output=True, text=True, timeout=30
        )
        if done.returncode != 0:
            pytest.fail(f"pactl {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def play(self, wav: Path, delay: float = 0.0) -> subprocess.Popen[bytes]:
        """Play ``wav`` into the virtual microphone (after ``delay`` seconds); returns paplay."""
        if delay > 0:
            time.sleep(delay)
        return subprocess.Popen(
            ["paplay", f"--device={SINK}", str(wav)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def stop(self) -> None:
        """End the daemon (SIGTERM by pid, then SIGKILL) and remove its folder."""
        pid, self.pid = self.pid, None
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 5
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        self._cleanup()

    def _cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its reaper counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def synthesize(text: str, out: Path) -> Path:
    """Speak ``text`` with Festival's US English HTS voice into ``out`` (a WAV file)."""
    if shutil.which("text2wave") is None:
        pytest.fail("text2wave is missing; install festival festvox-us-slt-hts")
    done = subprocess.run(
        ["text2wave", "-eval", "(voice_cmu_us_slt_arctic_hts)", "-o", str(out)],
        input=text,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0 or not out.is_file() or out.stat().st_size < 1000:
        pytest.fail(
            f"festival could not synthesize speech (install festvox-us-slt-hts): {done.stderr.strip()}"
        )
    return out


def words(text: str) -> list[str]:
    """Lower-case words without punctuation."""
    cleaned = "".join(c.lower() if c.isalnum() or c == "'" else " " for c in text)
    return cleaned.split()


def recall(reference: str, hypothesis: str) -> float:
    """Share of the reference's words that the hypothesis contains (order-free)."""
    ref, hyp = words(reference), set(words(hypothesis))
    return sum(w in hyp for w in ref) / len(ref) if ref else 0.0
