"""`stack down`: the nodes of one kind stop together, everything else one at a time in order."""

from __future__ import annotations

from conveyor.stack.components import Topology
from conveyor.stack.local import _stop_rounds


def test_the_nodes_of_a_quorum_stop_together() -> None:
    names = [
        "airflow-triggerer",
        "airflow-scheduler",
        "datanode-2",
        "datanode-1",
        "datanode-0",
        "namenode",
        "kafka-2",
        "kafka-1",
        "kafka-0",
    ]
    replicated = Topology(3, 3, False)
    quorums = (replicated.kafka_names(), replicated.datanode_names())
    assert list(_stop_rounds(names, quorums)) == [
        ["airflow-triggerer"],
        ["airflow-scheduler"],
        ["datanode-2", "datanode-1", "datanode-0"],
        ["namenode"],
        ["kafka-2", "kafka-1", "kafka-0"],
    ]


def test_a_single_node_stack_stops_one_at_a_time() -> None:
    names = ["connect", "postgres", "airflow-api-server", "datanode-0", "namenode", "kafka-0"]
    single = Topology(1, 1, False)
    quorums = (single.kafka_names(), single.datanode_names())
    assert list(_stop_rounds(names, quorums)) == [[name] for name in names]
    assert list(_stop_rounds([], quorums)) == []
