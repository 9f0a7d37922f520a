# Entry points named in the README. Each target does all of its own set-up.
# DDS discovery stays on this machine unless the user has chosen otherwise.
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test bench
setup:
	@bash scripts/bootstrap.sh

demo: setup
	$(VENV)/bin/hlai demo --episodes 3 --out out/demo

test: setup
	$(VENV)/bin/ruff check hlai_ros test benchmarks launch
	$(PY) -m pytest -q test

bench: setup
	$(PY) benchmarks/bench_sim.py
	$(PY) benchmarks/bench_collect.py --task push
	$(PY) benchmarks/bench_planner.py --threads 1
	$(PY) benchmarks/bench_world_model.py --threads 1
	$(PY) benchmarks/bench_plan_latency.py --task cliff push --threads 1 2
	$(PY) benchmarks/bench_plan_settings.py --task cliff --threads 2 --settings 12x128x1 16x80x1 16x80x0
