"""After the search: the chosen trial's spec trained through the product's full schedule (L1, L2, QAT), exported to
INT8, checked, evaluated, logged beside its trial in MLflow and registered (``nas retrain``). It sits above the study
(it reads one) and beside training (:mod:`nas.train` runs the schedule)."""

from nas.retrain._retrain import RetrainResult, retrain

__all__ = ["retrain", "RetrainResult"]
