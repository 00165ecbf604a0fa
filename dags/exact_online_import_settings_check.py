"""Exact Online imports: the settings Variable, checked where Airflow shows broken DAG files.

This file defines no DAG (Airflow parses it because it mentions airflow and dag). While the Variable
`exact_online_import_settings` validates, parsing it does nothing. When it does not, parsing fails with the
validation message, and Airflow shows that as ONE "DAG import error" at the top of the DAG list, naming the
wrong key. It is a separate file so that the 14 import DAGs stay in place meanwhile (an import error in their
own file would make Airflow drop them after `stale_dag_threshold`); `exact_online_import.py` gives them no
schedule while the settings are invalid, so nothing runs on settings nobody can read and nothing turns red.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.append(str(_ROOT))

from airflow.sdk import Variable, get_parsing_context  # noqa: E402

from include.outsmart_import.settings import VARIABLE_NAME, parse_settings  # noqa: E402

# Only the dag-processor needs the check; a worker starting an import task never parses this file for it.
if get_parsing_context().dag_id is None:
    parse_settings(Variable.get(VARIABLE_NAME, default=None))  # raises SettingsError naming every wrong key
