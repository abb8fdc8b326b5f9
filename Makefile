# speechquant developer commands. `make help` lists them.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# Audio (sounddevice, virtual microphone), speech synthesis (demo:synthetic data), Xvfb, and the X
# libraries Qt's xcb platform plugin loads for a real window (ldd on PySide6's libqxcb.so).
APT_AUDIO := libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins festival festvox-us-slt-hts espeak-ng
APT_XCB := xvfb libxcb1 libx11-xcb1 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 \
  libxcb-randr0 libxcb-render0 libxcb-render-util0 libxcb-shape0 libxcb-shm0 libxcb-sync1 \
  libxcb-xfixes0 libxcb-xinerama0 libxcb-xinput0 libxcb-xkb1 libxkbcommon0 libxkbcommon-x11-0 \
  libegl1 libgl1 libopengl0 libfontconfig1 libdbus-1-3
APT_PACKAGES := $(APT_AUDIO) $(APT_XCB)
STAMP := $(VENV)/.installed
LOCKVENV := .cache/lock-venv
UV_VERSION := 0.13.9


.PHONY: help install lock lock-upgrade system-deps lint typecheck contract test test-fast demo gui screenshots bench bench-compare bench-search bench-peers bench-trust bench-cluster bench-memory bench-profile clean

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --require-hashes --no-deps -r requirements.lock
	$(PIP) install -q --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	touch $(STAMP)

install: $(STAMP) ## create .venv and install speechquant and every extra from requirements.lock

LOCK_COMPILE = $(LOCKVENV)/bin/uv pip compile pyproject.toml --extra dev --extra demo --extra demo-base \
	  --extra cluster --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_36

lock: ## bring requirements.lock in line with pyproject.toml, keeping every pin that still fits (hashes)
	python3 -m venv $(LOCKVENV) && $(LOCKVENV)/bin/pip install -q 'uv==$(UV_VERSION)'
	$(LOCK_COMPILE) -o requirements.lock
	rm -rf $(LOCKVENV)

lock-upgrade: ## re-resolve every dependency to its newest allowed release (then run make test)
	python3 -m venv $(LOCKVENV) && $(LOCKVENV)/bin/pip install -q 'uv==$(UV_VERSION)'
	$(LOCK_COMPILE) --upgrade -o requirements.lock
	rm -rf $(LOCKVENV)

system-deps: ## install the apt packages (as root), or say which are missing
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then echo "system packages: all present"; \
	elif [ "$$(id -u)" = "0" ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	else echo "missing system packages:$$missing (install them: sudo apt-get install$$missing)"; fi

lint: $(STAMP) ## ruff lint and format check
	$(VENV)/bin/ruff check core gui tests benchmarks
	$(VENV)/bin/ruff format --check core gui tests benchmarks

typecheck: $(STAMP) ## mypy on core/ and gui/
	$(VENV)/bin/mypy core gui

contract: $(STAMP) ## import contracts: core never imports Qt or gui; core's subpackages import only downward
	$(VENV)/bin/lint-imports

test: $(STAMP) system-deps lint typecheck contract ## everything CI runs: installs from the lock, lint, types, import contracts, pytest
	$(PY) -m pytest -q

test-fast: $(STAMP) ## pytest without the slow real-model and real-audio tests
	$(PY) -m pytest -q -m "not slow and not audio"

demo: $(STAMP) system-deps ## compare presets on the built-in Whisper tiny.en and the 32 real demo utterances
	$(VENV)/bin/speechquant demo

gui: $(STAMP) system-deps ## start the desktop app
	$(VENV)/bin/speechquant-gui

screenshots: $(STAMP) ## render the README's GUI screenshots into docs/screenshots (Whisper tiny.en, shared speech set; about 10 min on 2 cores)
	QT_QPA_PLATFORM=offscreen $(PY) -m speechquant.gui.screenshots docs/screenshots --limit 10 --only main-window results microphone
	QT_QPA_PLATFORM=offscreen $(PY) -m speechquant.gui.screenshots docs/screenshots --limit 6 --only sensitivity --sensitivity-source demo:whisper-tiny-en --sensitivity-schemes dynamic

bench: $(STAMP) ## encoder speed of the presets on replica:wav2vec2-large (benchmarks/bench_presets.py)
	$(PY) benchmarks/bench_presets.py

bench-compare: $(STAMP) ## WER and speed of the presets on Whisper tiny.en, real speech (benchmarks/bench_compare.py)
	$(PY) benchmarks/bench_compare.py

bench-search: $(STAMP) ## sensitivity and plan search on Whisper and the large replica (benchmarks/bench_search.py)
	$(PY) benchmarks/bench_search.py

bench-peers: $(STAMP) ## speechquant vs faster-whisper and ONNX Runtime, same weights and speech (benchmarks/bench_peers.py)
	$(PY) benchmarks/bench_peers.py

bench-memory: $(STAMP) ## peak RSS of speechquant transcribe EXPORT on real speech, vs faster-whisper (benchmarks/bench_memory.py)
	$(PY) benchmarks/bench_memory.py

bench-trust: $(STAMP) ## paired speed-ups quiet, under a busy loop and against a stale baseline (benchmarks/bench_trust.py)
	$(PY) benchmarks/bench_trust.py

bench-cluster: $(STAMP) ## sensitivity on Whisper tiny.en, one process vs a local 2-worker Ray cluster (benchmarks/bench_cluster.py)
	$(PY) benchmarks/bench_cluster.py

bench-profile: $(STAMP) ## where float32 and the best plan spend their time, stage by stage, and variants timed against the plan (benchmarks/profile_plans.py)
	$(PY) benchmarks/profile_plans.py --top-ops 12 --candidates
	$(PY) benchmarks/profile_plans.py --source demo:whisper-base --language en --limit 6
	$(PY) benchmarks/profile_plans.py --source replica:wav2vec2-large --limit 4

clean: ## remove the venv and caches
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache
