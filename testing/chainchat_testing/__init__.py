"""ChainChat test support (dev only): fixtures and helpers shared by the test suites and benchmarks."""
