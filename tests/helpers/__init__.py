"""What test modules share: import it from here, never from another test module or a
conftest. Fixtures stay in conftest.py files; plain functions and constants live here."""
