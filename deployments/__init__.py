"""How flows are run (schedules, triggers, work pools). Filled by the issue "Retrain when data arrives"."""
