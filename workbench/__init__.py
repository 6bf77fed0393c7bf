"""workbench."""

import warnings as _warnings

# pyspark 4.3 warns, whenever it is imported, that it does not yet fully support pandas 3. With the
# Spark engine installed (make env-spark) pandera imports it too, so every process that validates a
# table printed it — notebooks included. The Spark engine's results are pinned to the local
# engine's by the equality tests (tests/test_spark_*.py), so this one message is not shown.
_warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
