"""Pure conversation logic: the flow engine, flows as YAML, the FAQ matcher. No I/O here
except reading the shipped YAML files; no imports from db/, handlers/ or any platform."""
