# s3prl-mi-probe: `make demo`, `make test`, `make bench`. Every target sets itself up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install-stamp
# PyTorch for this machine kind (CPU, Python 3.11): torchaudio 2.11 needs torch >= 2.14 to load.
TORCH_PINS := torch==2.14.1 torchaudio==2.11.1
# s3prl's source tree (with run_downstream.py), for the test that runs it from a checkout.
S3PRL_SDIST_DIR := $(VENV)/s3prl-sdist

.PHONY: install lint test demo bench check-s3prl-fork pretrain-demo-model clean

install: $(STAMP)

$(STAMP): setup.cfg setup.py pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PINS)
	$(BIN)/python -m pip install --quiet -e '.[s3prl,test]' $(TORCH_PINS)
	$(BIN)/python -m pip download --quiet --no-deps --no-binary :all: -d $(S3PRL_SDIST_DIR) s3prl==0.4.18
	touch $@

# The suite in one process per core (files kept whole, so module fixtures run once), the 15 slowest tests
# printed so that their cost stays visible. OpenMP threads wait passively, as the command sets it for its
# own runs: spinning workers on shared cores took 584 s instead of 438 s on 2 idle cores.
test: install lint
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest --numprocesses auto --dist loadfile --durations 15; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: that is a failure"; exit 1; fi; \
	exit $$status

# Style: ruff's lint rules and formatter (configured in pyproject.toml) on the package, tests and benches.
lint: install
	$(BIN)/ruff check s3prl_mi_probe tests bench
	$(BIN)/ruff format --check s3prl_mi_probe tests bench

demo: install
	$(BIN)/s3prl-mi-probe demo --out demo_out

# Reproduces s3prl_mi_probe/demo/models/ with s3prl's own APC pretraining recipe (~10 min on 2 CPUs).
pretrain-demo-model: install
	$(BIN)/python -m s3prl_mi_probe.demo.pretrain

bench: install
	$(BIN)/python bench/probe_vs_sklearn.py
	$(BIN)/python bench/sweep_speed.py --out bench_out
	$(BIN)/python bench/hard_margin_vs_sklearn.py --sizes 2000x256x20 5000x1024x40
	$(BIN)/python bench/benchmark_cost.py --out bench_out/benchmark_cost
	$(BIN)/python bench/scale.py --dir bench_out/scale

# ESPnet's fork of s3prl (espnet-s3prl) in its own .venv-s3prl-fork: a runner smoke run and a sweep
# (minutes, from PyPI; not part of make test).
check-s3prl-fork:
	$(PYTHON) bench/check_s3prl_fork.py --venv .venv-s3prl-fork

clean:
	rm -rf $(VENV) .venv-s3prl-fork build *.egg-info demo_out bench_out
