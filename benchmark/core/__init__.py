"""Core: the one error type, atomic files, consoles, paths (the cache root), optional-extra guards
and verified downloads. Imports nothing else of srbench."""
