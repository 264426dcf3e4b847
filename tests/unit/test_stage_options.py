from rlhf.stages.options import merged_trainer_args


def test_mlflow_report_to_is_replaced_by_our_logger():
    assert merged_trainer_args({"a": 1}, {"report_to": "mlflow"})["report_to"] == "none"
    assert merged_trainer_args({}, {"report_to": ["mlflow", "tensorboard"]})["report_to"] == \
        ["tensorboard"]
    assert merged_trainer_args({}, {"report_to": "all"})["report_to"] == "none"
    assert merged_trainer_args({"lr": 1, "b": 2}, {"lr": 3}) == \
        {"lr": 3, "b": 2, "report_to": "none"}
