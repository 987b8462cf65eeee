"""An independent, brute-force reference of SPEC §4-§7 (daily level) and an adversarial
data generator, used to check the main implementation byte for byte.

Nothing here imports bds_metrics or bds_airflow: independence is the point.
"""
