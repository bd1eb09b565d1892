"""Results: the record types and the ``srbench/1`` files (JSON, CSV, Markdown), the environment
block and hardware consistency of merged rows."""
