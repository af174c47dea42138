"""The routing table the emulator and API Gateway share."""

from common.gateway import route_table


def test_paths_reach_their_functions():
    table = route_table()
    assert table.resolve("/api/v1/health/ready") == "health"
    assert table.resolve("/health") == "health"
    assert table.resolve("/") == "health"
    assert table.resolve("/api/v1/datasets/sales/a.csv") == "datasets"
    assert table.resolve("/api/v1/domains") == "datasets"
    assert table.resolve("/datasets/sales/a.csv") == "legacy"
    assert table.resolve("/api/v1/datasetsx") == "legacy"


def test_every_routed_function_exists():
    import os

    root = os.path.join(os.path.dirname(__file__), "..", "..", "functions")
    for name in route_table().functions:
        assert os.path.exists(os.path.join(root, name, "main.py")), name
