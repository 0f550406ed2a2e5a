import pathlib
import sys

# lets the tests import the helper modules beside them (talib_compare)
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
