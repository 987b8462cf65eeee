"""BDS maintenance: creates the run of every billing day that has none (see
bds_airflow.billing_days). Thin: reads BDS_CONFIG only when its task runs."""

from bds_airflow.billing_days import billing_days_dag

dag = billing_days_dag()
