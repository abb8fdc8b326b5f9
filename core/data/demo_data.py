"""The built-in ``demo`` data: English sentences synthesized once and cached.

The sentences ship in ``speechquant.resources/demo_sentences.txt``. They are spoken by
Festival's HTS voice ``cmu_us_slt_arctic_hts`` (packages festival, festvox-us-slt-hts) or,
where that is unavailable, by ``espeak-ng -v en-us``, and stored as 16 kHz mono 16-bit WAV
with a SpeechBrain manifest (``ID,duration,wav,wrd,voice``) in ``cache_dir()/demo-data``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import soundfile as sf

from speechquant.core.data.audio import AudioReadError, load_audio
from speechquant.core.errors import DataError
from speechquant.core.paths import building_folder, cache_dir
from speechquant.core.progress import CancelToken, ProgressCallback, check, report

SAMPLE_RATE = 16000
FOLDER_NAME = "demo-data"
STAMP_NAME = "build.json"
FESTIVAL_VOICE = "cmu_us_slt_arctic_hts"
ESPEAK_VOICE = "en-us"
APT_HINT = "install festival and festvox-us-slt-hts (or espeak-ng) with apt"
_TIMEOUT_SECONDS = 300
_BATCH_SIZE = 8


def load_sentences() -> list[str]:
    """The demo sentences, one per non-blank line of the packaged resource."""
    text = (
        resources.files("speechquant.resources")
        .joinpath("demo_sentences.txt")
        .read_text(encoding="utf-8")
    )
    return [line.strip() for line in text.splitlines() if line.strip()]


@dataclass(frozen=True)
class Synthesizer:
    """A text-to-speech program that speaks a batch of sentences into WAV files."""

    voice: str
    program: str

    def commands(self, batch: list[tuple[str, Path]], work: Path) -> list[list[str]]:
        """Command lines that write each ``(text, wav path)`` of ``batch``."""
        if self.voice.startswith("festival:"):
            script = work / f"{batch[0][1].stem}.scm"
            lines = [f"(voice_{FESTIVAL_VOICE})"]
            for text, out_file in batch:
                lines += [
                    f"(set! utt (utt.synth (Utterance Text {_scheme_string(text)})))",
                    f"(utt.wave.resample utt {SAMPLE_RATE})",
                    f"(utt.save.wave utt {_scheme_string(str(out_file))} 'riff)",
                ]
            script.write_text("\n".join(lines) + "\n", encoding="utf-8")
            return [[self.program, "-b", str(script)]]
        commands = []
        for text, out_file in batch:
            text_file = out_file.with_suffix(".txt")
            text_file.write_text(text + "\n", encoding="utf-8")
            commands.append(
                [self.program, "-v", ESPEAK_VOICE, "-w", str(out_file), "-f", str(text_file)]
            )
        return commands


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _which(program: str) -> str | None:
    return shutil.which(program)


def available_synthesizers() -> list[Synthesizer]:
    """Festival first, then espeak-ng, as far as they are on PATH."""
    found = []
    festival = _which("festival")
    if festival:
        found.append(Synthesizer(f"festival:{FESTIVAL_VOICE}", festival))
    espeak = _which("espeak-ng")
    if espeak:
        found.append(Synthesizer(f"espeak-ng:{ESPEAK_VOICE}", espeak))
    return found


def _utterance_id(index: int) -> str:
    return f"demo-{index + 1:02d}"


def _run_batch(synth: Synthesizer, batch: list[tuple[str, Path]], work: Path) -> None:
    for command in synth.commands(batch, work):
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=_TIMEOUT_SECONDS, check=False
            )
        except (OSError, subprocess.SubprocessError) as error:
            raise DataError(f"{synth.voice} could not run: {error}; {APT_HINT}") from error
        missing = [out.name for _, out in batch if not out.is_file()]
        if result.returncode != 0 and missing:
            message = " ".join((result.stderr or result.stdout or "").split())[-200:]
            raise DataError(
                f"{synth.voice} failed (exit {result.returncode}: {message or 'no message'}); "
                f"{APT_HINT}"
            )
    missing = [out.name for _, out in batch if not out.is_file()]
    if missing:
        raise DataError(f"{synth.voice} wrote no audio for {missing[0]}; {APT_HINT}")


def _speak_all(
    synth: Synthesizer,
    jobs: list[tuple[str, Path]],
    work: Path,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
) -> None:
    stage = "synthesizing demo data"
    workers = max(1, min(4, os.cpu_count() or 1))
    size = max(1, min(_BATCH_SIZE, -(-len(jobs) // workers)))
    batches = [jobs[i : i + size] for i in range(0, len(jobs), size)]
    done = 0
    report(progress, done, len(jobs), stage)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: dict[Future[None], int] = {
            pool.submit(_run_batch, synth, batch, work): len(batch) for batch in batches
        }
        try:
            while pending:
                finished, _ = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                check(cancel)
                for future in finished:
                    future.result()
                    done += pending.pop(future)
                    report(progress, done, len(jobs), stage)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _synthesize_all(
    sentences: list[str],
    out: Path,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
) -> tuple[str, list[float]]:
    """Speak every sentence into ``out`` as 16 kHz PCM-16; return the voice and durations."""
    check(cancel)
    candidates = available_synthesizers()
    if not candidates:
        raise DataError(f"no speech synthesizer found to build the demo data; {APT_HINT}")
    failure: DataError | None = None
    for synth in candidates:
        work = out / f".work-{synth.voice.split(':')[0]}"
        work.mkdir()
        jobs = [(text, work / f"{_utterance_id(i)}.wav") for i, text in enumerate(sentences)]
        try:
            _speak_all(synth, jobs, work, progress, cancel)
        except DataError as error:
            failure = error
            continue
        durations = []
        for _, raw in jobs:
            try:
                waveform = load_audio(raw, SAMPLE_RATE)
            except AudioReadError as error:
                raise DataError(f"{synth.voice} wrote unusable audio: {error}") from error
            sf.write(str(out / raw.name), waveform.numpy(), SAMPLE_RATE, subtype="PCM_16")
            durations.append(waveform.numel() / SAMPLE_RATE)
        shutil.rmtree(work)
        return synth.voice, durations
    assert failure is not None
    raise failure


def _digest(sentences: list[str]) -> str:
    return hashlib.sha256("\n".join(sentences).encode("utf-8")).hexdigest()


def _is_current(folder: Path, digest: str, count: int) -> bool:
    try:
        stamp = json.loads((folder / STAMP_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(stamp, dict) or stamp.get("sentences_sha256") != digest:
        return False
    return (folder / "manifest.csv").is_file() and len(list(folder.glob("*.wav"))) == count


def _write_manifest(out: Path, sentences: list[str], voice: str, durations: list[float]) -> None:
    with (out / "manifest.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ID", "duration", "wav", "wrd", "voice"])
        for i, (text, seconds) in enumerate(zip(sentences, durations, strict=True)):
            uid = _utterance_id(i)
            writer.writerow([uid, f"{seconds:.3f}", f"{uid}.wav", text, voice])


def build_demo_data(
    progress: ProgressCallback | None = None, cancel: CancelToken | None = None
) -> Path:
    """Return the demo data folder, synthesizing it first if needed.

    The build happens in a temporary sibling folder that is renamed into place when
    complete, so an interrupted build leaves nothing half-written. Later calls return the
    cached folder at once unless the sentences changed.

    Raises
    ------
    DataError
        If neither Festival nor espeak-ng is installed, or synthesis fails.
    """
    sentences = load_sentences()
    digest = _digest(sentences)
    root = cache_dir()
    target = root / FOLDER_NAME
    if _is_current(target, digest, len(sentences)):
        return target
    with building_folder(
        target, is_current=lambda t: _is_current(t, digest, len(sentences))
    ) as building:
        voice, durations = _synthesize_all(sentences, building, progress, cancel)
        _write_manifest(building, sentences, voice, durations)
        stamp = {"sentences_sha256": digest, "voice": voice, "sample_rate": SAMPLE_RATE}
        (building / STAMP_NAME).write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
    return target
