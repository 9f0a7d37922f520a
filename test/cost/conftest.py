"""Make the analytic test dynamics in test/actor importable from the cost tests."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / 'actor'))
