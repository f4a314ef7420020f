"""Security tests: hostile payloads under a real pilot, each pilot inside its own PID namespace."""
