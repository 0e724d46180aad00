"""Execution back ends: they map a plain callable over chunks of runs.

Back ends know nothing of trajectories or files: they get a function and
picklable chunks, and yield what the function returned, chunk by chunk.
"""
from .base import Executor
from .serial import SerialExecutor

__all__ = ["Executor", "SerialExecutor"]
