# The server runtime: the driver that runs a Replica over the transport, LMDB and an Applier.
add_library(ballot_runtime node.cc)
target_link_libraries(ballot_runtime PUBLIC ballot_net ballot_store ballot_statemachine)
