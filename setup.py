"""The one compiled module: the records walk of produce validation (kafkapy/wire/_records_scan.c).
Optional: where it cannot be built, kafkapy runs the same walk in Python, slower."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("kafkapy.wire._records_scan", ["kafkapy/wire/_records_scan.c"], optional=True)])
