"""Runs one engine test (MODULE.Class.test_name) for ctest: exit 0 when it passed, 1 when it
failed, 77 (ctest's SKIP_RETURN_CODE) when it was skipped, so a skip is never counted as a
pass."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
suite = unittest.defaultTestLoader.loadTestsFromName(sys.argv[1])
result = unittest.TextTestRunner(verbosity=2).run(suite)
if not result.wasSuccessful():
    sys.exit(1)
if result.testsRun and len(result.skipped) == result.testsRun:
    sys.exit(77)
