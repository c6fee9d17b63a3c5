"""A toy experiment family that lives under tests/ and reaches the workflow only through config (`families:`):
the proof that a family is one slice (its jobs and claims modules, its rules file, its schema block, its
captions) and that the shared hubs need no edit for it (tests/test_extending.py runs it end to end)."""
